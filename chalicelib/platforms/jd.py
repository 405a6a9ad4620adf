"""JD-style marketplace: JOS push webhooks (platforms.md 1.2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

from chalicelib.domain.actions import Action, ReturnAddress
from chalicelib.domain.ids import EntityKind, EntityRef
from chalicelib.domain.model import (
    CanonicalEvent,
    CaseKind,
    CaseSnapshot,
    CaseStatus,
    ConnectedShop,
    Inbound,
    Item,
    LogisticsTrace,
    OrderSnapshot,
    OrderStatus,
    ShipmentStatus,
    ShopTokens,
)
from chalicelib.domain.pulls import Window, pulled_record
from chalicelib.platforms.api import CallOutcome, CallResult, post_signed
from chalicelib.platforms.base import (
    ApiSession,
    AppCredentials,
    InboundRequest,
    MalformedMessageError,
    OneMessagePush,
    Pulled,
    SessionCalls,
    UnsupportedActionError,
    VerifiedDelivery,
    WebhookRejectedError,
    check_app_key,
    require_param,
    single_valued,
)
from chalicelib.platforms.oauth import OAuthExchangeError, fetch, tokens_from
from chalicelib.platforms.oauth import session as oauth_session
from chalicelib.platforms.signing import (
    has_no_value,
    joined_params,
    md5_sign,
    signatures_match,
    without_blank,
)
from chalicelib.platforms.wire import (
    Identifier,
    Quantity,
    WireModel,
    WireTime,
    Yuan,
    bounded_identifier,
    check_timestamp,
    format_wire_time,
    one_of,
    validate_decoded,
    validate_json,
)
from chalicelib.settings import settings

PAYLOAD_FIELD = "360buy_param_json"
# Every field a JOS push may carry (platforms.md 1.2).
PUSH_FIELDS = frozenset(
    {
        "app_key",
        "timestamp",
        "v",
        "method",
        PAYLOAD_FIELD,
        "msg_id",
        "sign",
        "format",
        "sign_method",
    }
)
# The order or service request is no longer in the status the call needs.
ALREADY_DONE_CODE = "66"
# The access_token is invalid or expired: refresh it, then retry once.
INVALID_TOKEN_CODE = "19"  # noqa: S105 - an error code, not a secret
# Who ShopHook's audits and receipts are recorded as, on the platform.
OPERATOR = "shophook"
# A refused refund apply's rejectType: "other" (the remark says why).
REJECT_OTHER = 5

ORDER_STATUS = {
    "WAIT_SELLER_STOCK_OUT": OrderStatus.PAID,
    "WAIT_GOODS_RECEIVE_CONFIRM": OrderStatus.SHIPPED,
    "FINISHED_L": OrderStatus.COMPLETED,
    "TRADE_CANCELED": OrderStatus.CLOSED,
}
# A refund apply has no goods to send back: once approved (1), the platform pays
# the buyer and the seller's part is done, so it reads as refunded.
REFUND_STATUS = {
    "0": CaseStatus.REQUESTED,
    "1": CaseStatus.REFUNDED,
    "2": CaseStatus.REFUSED,
    "3": CaseStatus.REFUNDED,
    "4": CaseStatus.CLOSED,
}
AFS_KIND = {"10": CaseKind.RETURN_REFUND, "20": CaseKind.EXCHANGE, "30": CaseKind.REPAIR}
AFS_STATUS = {
    "10": CaseStatus.REQUESTED,
    "20": CaseStatus.AWAITING_RETURN,
    "30": CaseStatus.REFUSED,
    "40": CaseStatus.RETURNED,
    "50": CaseStatus.RETURNED,
    "70": CaseStatus.CLOSED,
}
AFS_DONE = "60"
SCAN_STATUS = {
    "揽收": ShipmentStatus.PICKED_UP,
    "运输": ShipmentStatus.IN_TRANSIT,
    "派送": ShipmentStatus.IN_TRANSIT,
    "签收": ShipmentStatus.DELIVERED,
    "异常": ShipmentStatus.EXCEPTION,
}


class OrderItem(WireModel):
    skuId: Identifier
    skuName: str
    itemTotal: Quantity
    jdPrice: Yuan
    category: str
    noReasonReturn: bool


class Order(WireModel):
    orderId: Identifier
    venderId: Identifier
    orderState: one_of(ORDER_STATUS)
    orderTotalPrice: Yuan
    freightPrice: Yuan
    freeShipping: bool
    province: str
    modified: WireTime
    paymentConfirmTime: WireTime | None = None
    waybill: str | None = None
    logisticsId: str | None = None
    items: list[OrderItem]


class RefundApply(WireModel):
    id: Identifier
    orderId: Identifier
    venderId: Identifier
    applyRefundSum: Yuan
    status: one_of(REFUND_STATUS)
    reason: str
    applyTime: WireTime
    modified: WireTime


class AfterSaleService(WireModel):
    afsServiceId: Identifier
    orderId: Identifier
    venderId: Identifier
    customerExpect: one_of(AFS_KIND)
    afsServiceStatus: one_of((*AFS_STATUS, AFS_DONE))
    questionTypeCode: Literal["quality", "other"]
    applyTime: WireTime
    modified: WireTime
    expressCode: str | None = None


class Trace(WireModel):
    orderId: Identifier
    waybill: str
    logisticsId: str
    opeTitle: one_of(SCAN_STATUS)
    opeTime: WireTime
    opeRemark: str


def _order_event(order: Order) -> OrderSnapshot:
    status = ORDER_STATUS[order.orderState]
    return OrderSnapshot(
        order_id=order.orderId,
        status=status,
        platform_status=order.orderState,
        total_fen=order.orderTotalPrice,
        shipping_fee_fen=order.freightPrice,
        free_shipping=order.freeShipping,
        region=order.province,
        items=tuple(
            Item(
                item_id=item.skuId,
                title=item.skuName,
                quantity=item.itemTotal,
                price_fen=item.jdPrice,
                category=item.category,
                no_reason_return=item.noReasonReturn,
            )
            for item in order.items
        ),
        modified=order.modified,
        paid_at=order.paymentConfirmTime,
        # JD sends no ship time: the out-of-stock message's `modified` is when it shipped.
        shipped_at=order.modified if status is OrderStatus.SHIPPED else None,
        tracking_no=order.waybill or None,
        carrier=order.logisticsId or None,
    )


def _refund_event(refund: RefundApply) -> CaseSnapshot:
    return CaseSnapshot(
        case_id=f"refund-{refund.id}",
        order_id=refund.orderId,
        kind=CaseKind.REFUND_ONLY,
        status=REFUND_STATUS[refund.status],
        platform_status=refund.status,
        amount_fen=refund.applyRefundSum,
        reason=refund.reason,
        quality_issue=False,
        modified=refund.modified,
    )


def _afs_event(service: AfterSaleService) -> CaseSnapshot:
    kind = AFS_KIND[service.customerExpect]
    done = CaseStatus.REFUNDED if kind is CaseKind.RETURN_REFUND else CaseStatus.COMPLETED
    return CaseSnapshot(
        case_id=f"afs-{service.afsServiceId}",
        order_id=service.orderId,
        kind=kind,
        status=AFS_STATUS.get(service.afsServiceStatus, done),
        platform_status=service.afsServiceStatus,
        amount_fen=None,
        reason=service.questionTypeCode,
        quality_issue=service.questionTypeCode == "quality",
        modified=service.modified,
        return_tracking_no=service.expressCode or None,
    )


def _trace_event(trace: Trace) -> LogisticsTrace:
    return LogisticsTrace(
        order_id=trace.orderId,
        tracking_no=trace.waybill,
        carrier=trace.logisticsId,
        status=SCAN_STATUS[trace.opeTitle],
        scanned_at=trace.opeTime,
        description=trace.opeRemark,
    )


_TOPICS: dict[str, tuple[type[WireModel], Callable[[Any], CanonicalEvent]]] = {
    **dict.fromkeys(
        (
            "jd_pop_order_create",
            "jd_pop_order_pay",
            "jd_pop_order_out_stock",
            "jd_pop_order_finish",
            "jd_pop_order_cancel",
        ),
        (Order, _order_event),
    ),
    "jd_pop_refund_apply": (RefundApply, _refund_event),
    "jd_pop_refund_status": (RefundApply, _refund_event),
    "jd_pop_afs_apply": (AfterSaleService, _afs_event),
    "jd_pop_afs_status": (AfterSaleService, _afs_event),
    "jd_pop_logistics_trace": (Trace, _trace_event),
}
TOPICS = tuple(_TOPICS)


@dataclass(frozen=True)
class Listing:
    """One reconciliation listing (platforms.md 2.3): its parameter names and page
    size, where the answer keeps its records and their total, and what they are."""

    start: str
    end: str
    page: str
    page_size: str
    size: int
    extra: dict[str, Any]
    answer: tuple[str, str, str]  # (result object, its list of records, its total)
    model: type[Order] | type[RefundApply]
    to_event: Callable[[Any], OrderSnapshot | CaseSnapshot]


ORDER_LISTING = "jingdong.pop.order.enSearch"
REFUND_LISTING = "jingdong.pop.afs.soa.refundapply.queryPageList"
# Re-reads one refund apply by its id.
REREAD_METHOD = "jingdong.pop.afs.soa.refundapply.queryById"
LISTINGS = {
    ORDER_LISTING: Listing(
        "start_date",
        "end_date",
        "page",
        "page_size",
        100,
        {"dateType": 1},  # by modified
        ("searchorderinfo_result", "orderInfoList", "orderTotal"),
        Order,
        _order_event,
    ),
    # By apply time: a refund apply that changes later is re-read by id.
    REFUND_LISTING: Listing(
        "applyTimeStart",
        "applyTimeEnd",
        "pageIndex",
        "pageSize",
        50,
        {},
        ("queryResult", "result", "totalCount"),
        RefundApply,
        _refund_event,
    ),
}


@dataclass(frozen=True)
class _Listed:
    page: Pulled
    total: int  # records the platform says the listing holds, over all its pages


class Jd(OneMessagePush, SessionCalls):
    name = "jd"
    channel = None  # every message is pushed
    listings = tuple(LISTINGS)
    rereads_open_cases = True

    def verify(
        self, request: InboundRequest, credentials: AppCredentials, now: datetime
    ) -> VerifiedDelivery:
        try:
            form = single_valued(
                parse_qsl(request.raw_body.decode(), keep_blank_values=True, errors="strict")
            )
        except UnicodeDecodeError:
            raise WebhookRejectedError(
                400, "malformed_form", "body is not a UTF-8 application/x-www-form-urlencoded form"
            ) from None
        # The signed string has no separators, so a field of another name could pass
        # for part of a documented one: refused before the signature means anything.
        unexpected = sorted(set(form) - PUSH_FIELDS)
        if unexpected:
            raise WebhookRejectedError(
                400,
                "unexpected_field",
                f"field '{unexpected[0]}' is not one of the push's fields "
                f"({', '.join(sorted(PUSH_FIELDS))})",
            )
        check_app_key(form, credentials)
        provided = require_param(form, "sign", "missing_signature")
        signed = without_blank({name: value for name, value in form.items() if name != "sign"})
        expected = md5_sign(credentials.app_secret, joined_params(signed))
        if not signatures_match(expected, provided):
            raise WebhookRejectedError(401, "bad_signature", "sign does not match the request")
        check_timestamp(form, now)
        return VerifiedDelivery(self.name, request.raw_body, form)

    def message_id(self, delivery: VerifiedDelivery) -> str | None:
        return delivery.params.get("msg_id") or None

    def parse(self, delivery: VerifiedDelivery) -> Inbound:
        message_id = self.message_id(delivery)
        if message_id is None:
            raise MalformedMessageError("msg_id", "Field required")
        bounded_identifier(message_id, "msg_id")
        topic = delivery.params.get("method", "")
        if topic not in _TOPICS:
            raise MalformedMessageError(
                "method", f"unknown topic {topic!r}; expected one of {', '.join(TOPICS)}"
            )
        model, to_event = _TOPICS[topic]
        payload = validate_json(model, delivery.params.get(PAYLOAD_FIELD, ""), PAYLOAD_FIELD)
        vender_id = getattr(payload, "venderId", None)
        return Inbound(
            platform=self.name,
            message_id=message_id,
            topic=topic,
            shop_id=f"{self.name}:{vender_id}" if vender_id is not None else None,
            event=to_event(payload),
        )

    def ack(self) -> dict[str, Any]:
        return {"code": "0", "msg": "success"}

    def failure(self, code: str, message: str) -> dict[str, Any]:
        return {"code": code, "msg": message}

    # JOS names the client `app_key`/`app_secret` and takes the token request as
    # a GET; Authlib sends the standard names too, which JOS ignores.
    def authorize_url(
        self, base_url: str, credentials: AppCredentials, redirect_uri: str, state: str
    ) -> str:
        oauth = oauth_session(credentials, redirect_uri, "none")
        url, _ = oauth.create_authorization_url(
            f"{base_url}/oauth2/to_login",
            state=state,
            app_key=credentials.app_key,
            scope="snsapi_base",
        )
        return url

    def exchange_code(
        self,
        base_url: str,
        credentials: AppCredentials,
        redirect_uri: str,
        code: str,
        now: datetime,
    ) -> ConnectedShop:
        oauth = oauth_session(credentials, redirect_uri, "none")
        answer = fetch(
            oauth,
            f"{base_url}/oauth2/access_token",
            "GET",
            code=code,
            app_key=credentials.app_key,
            app_secret=credentials.app_secret,
        )
        if not answer.get("venderId"):
            raise OAuthExchangeError("the token answer names no venderId")
        return ConnectedShop(
            shop_id=f"{self.name}:{answer['venderId']}",
            name=str(answer.get("uid") or ""),
            tokens=tokens_from(answer, now),
        )

    # JD-style cases are refund applies (`refund-<id>`: approve or reject) or
    # after-sale services (`afs-<id>`: audit, then receive; JD pays the refund).
    def action_request(
        self,
        shop_id: str,
        action: Action,
        case: CaseSnapshot,
        reason: str,
        address: ReturnAddress | None,
    ) -> tuple[str, dict[str, Any]]:
        kind, _, number = case.case_id.partition("-")
        remark = reason or "ok"  # the platform wants a remark on every audit
        if kind == "refund" and action in (Action.AGREE_REFUND, Action.REFUSE):
            reply: dict[str, Any] = {
                "id": number,
                "status": 1 if action is Action.AGREE_REFUND else 2,
                "checkUserName": OPERATOR,
                "remark": remark,
                # A refund apply is the buyer's request before the goods leave the
                # warehouse (after that the buyer opens a service), and the case does
                # not carry the order's stock-out: reported as not shipped.
                "outWareStatus": 2,
            }
            if action is Action.REFUSE:
                reply["rejectType"] = REJECT_OTHER
            return "jingdong.pop.afs.soa.refundapply.replyRefund", reply
        if kind == "afs" and action in (Action.AGREE_RETURN, Action.REFUSE):
            audit = {
                "afsServiceId": number,
                "approve": action is Action.AGREE_RETURN,
                "remark": remark,
            }
            if address is not None:
                audit["returnAddress"] = f"{address.address} {address.name} {address.mobile}"
            return "jingdong.pop.afs.audit", audit
        if kind == "afs" and action is Action.CONFIRM_RETURN_RECEIVED:
            return "jingdong.asc.receive.register", {
                "buId": shop_id.partition(":")[2],
                "operatePin": OPERATOR,
                "operateNick": OPERATOR,
                "serviceId": number,
                "orderId": case.order_id,
                "receiveRemark": reason,
            }
        if kind == "afs" and action is Action.AGREE_REFUND:
            raise UnsupportedActionError(
                "JD-style services are refunded by the platform: confirm the return instead"
            )
        raise UnsupportedActionError(
            f"a JD-style refund apply is only agreed or refused, not {action}"
        )

    def ship_request(
        self, order_id: str, tracking_no: str, carrier: str
    ) -> tuple[str, dict[str, Any]]:
        return "jingdong.pop.order.shipment", {
            "orderId": order_id,
            "logiCoprId": carrier,
            "logiNo": tracking_no,
        }

    def answered(
        self, session: ApiSession, method: str, business: dict[str, Any]
    ) -> tuple[CallResult, dict[str, Any]]:
        """One JOS API call (platforms.md 2.2), signed md5: the result, and on
        success the body under its success key."""
        form = {
            "method": method,
            "app_key": session.credentials.app_key,
            "access_token": session.access_token,
            "timestamp": format_wire_time(session.now),
            "v": "2.0",
            # Compact, as the SDK serializes; a field without a value is not sent.
            PAYLOAD_FIELD: json.dumps(
                {name: value for name, value in business.items() if not has_no_value(value)},
                ensure_ascii=False,
                separators=(",", ":"),
            ),
        }
        failed, answer = post_signed(
            session.api_url,
            form,
            md5_sign,
            session.credentials.app_secret,
            settings().outbound_timeout,
        )
        if failed is not None:
            return failed, {}
        # JOS spells its success key "responce".
        success = (
            answer.get(method.replace(".", "_") + "_responce") if isinstance(answer, dict) else None
        )
        if isinstance(success, dict):
            code = str(success.get("code", "0"))
            if code == "0":
                return CallResult(CallOutcome.SUCCESS), success
            return CallResult(CallOutcome.PERMANENT, code, str(success.get("msg", ""))), {}
        error = answer.get("error_response", {}) if isinstance(answer, dict) else {}
        code = str(error.get("code", ""))
        message = str(error.get("en_desc") or error.get("zh_desc") or "")
        if code == ALREADY_DONE_CODE:
            return CallResult(CallOutcome.ALREADY_DONE, code, message), {}
        if code == INVALID_TOKEN_CODE:
            return CallResult(CallOutcome.REFRESH_TOKEN, code, message), {}
        # Other codes starting 5 or 19 are "system busy" and rate limits.
        retryable = code.startswith(("5", "19"))
        outcome = CallOutcome.RETRYABLE if retryable else CallOutcome.PERMANENT
        return CallResult(outcome, code, message), {}

    def pull(
        self, session: ApiSession, shop_id: str, listing: str, window: Window, page: str | None
    ) -> Pulled:
        """The order search by modified and the refund-apply list by apply time
        (platforms.md 2.3); pages are counted from 1."""
        found = LISTINGS[listing]
        page_no = int(page or 1)
        business = {
            found.start: format_wire_time(window.start),
            found.end: format_wire_time(window.end),
            found.page: page_no,
            found.page_size: found.size,
            **found.extra,
        }
        pulled = self._records(session, listing, found, business)
        if pulled.page.refused is not None or page_no * found.size >= pulled.total:
            return pulled.page
        return replace(pulled.page, next_page=str(page_no + 1))

    def read(self, session: ApiSession, shop_id: str, ref: EntityRef) -> Pulled | None:
        """A refund apply as it is now (queryById); a service request or an order
        has no such call here."""
        kind, _, number = ref.entity_id.partition("-")
        if ref.kind is not EntityKind.CASE or kind != "refund":
            return None
        # Its answer has the refund-apply list's shape, with one record.
        return self._records(session, REREAD_METHOD, LISTINGS[REFUND_LISTING], {"id": number}).page

    def _records(
        self, session: ApiSession, method: str, found: Listing, business: dict[str, Any]
    ) -> _Listed:
        """The records of a listing's answer, each naming its shop (venderId)."""
        result, body = self.answered(session, method, business)
        if result.outcome is not CallOutcome.SUCCESS:
            return _Listed(Pulled(refused=result), 0)
        outer, rows_key, total_key = found.answer
        answer = body.get(outer) or {}
        rows = answer.get(rows_key) or []
        records = []
        for index, row in enumerate(rows):
            record = validate_decoded(found.model, row, f"{outer}.{rows_key}[{index}]")
            event = found.to_event(record)
            records.append(
                pulled_record(self.name, f"{self.name}:{record.venderId}", method, event)
            )
        return _Listed(Pulled(tuple(records)), int(answer.get(total_key) or 0))

    def refresh(
        self, base_url: str, credentials: AppCredentials, refresh_token: str, now: datetime
    ) -> ShopTokens:
        oauth = oauth_session(credentials, "", "none")
        answer = fetch(
            oauth,
            f"{base_url}/oauth2/refresh_token",
            "GET",
            grant_type="refresh_token",
            refresh_token=refresh_token,
            app_key=credentials.app_key,
            app_secret=credentials.app_secret,
        )
        return tokens_from(answer, now)


PLATFORM = Jd()
