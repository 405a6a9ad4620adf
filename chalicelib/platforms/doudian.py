"""Doudian-style marketplace (Douyin shops): pushes of message arrays signed
`event-sign` (platforms.md 1.3), its signed API with the method in the path
(2.4), and OAuth whose code is exchanged with the API method `token.create` (3)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import AfterValidator, Field

from chalicelib.domain.actions import Action, ReturnAddress
from chalicelib.domain.ids import EntityKind, EntityRef
from chalicelib.domain.model import (
    GOODS_COME_BACK,
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
    ThinMessage,
)
from chalicelib.domain.pulls import Window, pulled_record
from chalicelib.platforms.api import CallOutcome, CallResult, post
from chalicelib.platforms.base import (
    ApiSession,
    AppCredentials,
    InboundRequest,
    MalformedMessageError,
    Pulled,
    SessionCalls,
    UnsupportedActionError,
    VerifiedDelivery,
    WebhookRejectedError,
)
from chalicelib.platforms.oauth import OAuthExchangeError, tokens_from
from chalicelib.platforms.signing import has_no_value, signatures_match
from chalicelib.platforms.wire import (
    Document,
    Identifier,
    Quantity,
    WireModel,
    one_of,
    validate_decoded,
    validate_json,
)
from chalicelib.settings import settings

APP_HEADER = "app-id"
SIGN_HEADER = "event-sign"
# The platform's check that the push URL works: answered at once, nothing stored.
CHECK_TAG = "0"
SUCCESS_CODE = 10000
RATE_LIMITED_CODE = 60000
RATE_LIMITED_SUB_CODE = "isv.traffic-limited"
INVALID_TOKEN_CODE = 40003
INVALID_TOKEN_SUB_CODES = frozenset({"isv.access-token-expired", "isv.access-token-no-existed"})
ALREADY_DONE_SUB_CODE = "isv.status-not-allowed"
DETAIL_METHOD = "order.orderDetail"
ORDER_LISTING = "order.searchList"
CASE_LISTING = "afterSale.List"
TOKEN_CREATE = "token.create"  # noqa: S105 - an API method's name
TOKEN_REFRESH = "token.refresh"  # noqa: S105 - an API method's name
SHIP_METHOD = "order.logisticsAdd"
OPERATE_METHOD = "afterSale.operate"
PAGE_SIZE = 100
# afterSale.operate's `type` (Doudian-style codes, platforms.md 2.4).
AGREE_REFUND, REFUSE_REFUND, AGREE_RETURN, REFUSE_RETURN, CONFIRM_AND_REFUND = (
    201,
    202,
    111,
    112,
    121,
)
# Unix seconds from 2000 to 2100: bounds a wire time so that no value overflows.
_EARLIEST, _LATEST = 946_684_800, 4_102_444_800
# A Doudian-style amount in fen: at most a trillion yuan, as wire.Yuan.
MAX_FEN = 10**14

ORDER_STATUS = {
    "1": OrderStatus.PENDING_PAYMENT,
    "2": OrderStatus.PAID,
    "3": OrderStatus.SHIPPED,
    "4": OrderStatus.CLOSED,
    "5": OrderStatus.COMPLETED,
}
CASE_KIND = {
    "0": CaseKind.RETURN_REFUND,
    "1": CaseKind.REFUND_ONLY,  # after shipping
    "2": CaseKind.REFUND_ONLY,  # before shipping
    "3": CaseKind.EXCHANGE,
}
# The after-sale messages' tags say what happened; `aftersale_status` is kept as
# the platform's own status.
CASE_STATUS = {
    "200": CaseStatus.REQUESTED,
    "201": CaseStatus.REFUNDED,
    "202": CaseStatus.AWAITING_RETURN,
    "203": CaseStatus.RETURNED,
    "204": CaseStatus.REFUSED,
    "205": CaseStatus.REFUSED,
    "206": CaseStatus.REFUNDED,
    "207": CaseStatus.CLOSED,
}
# `aftersale_status` (Doudian-style codes: 6 awaiting the seller, 7 awaiting the
# buyer's return, 11 goods returned, 12 succeeded, 27 refused, 28 closed, 29
# refused after the return): what a listing's record says instead of a tag.
LISTED_STATUS = {
    "6": CaseStatus.REQUESTED,
    "7": CaseStatus.AWAITING_RETURN,
    "11": CaseStatus.RETURNED,
    "12": CaseStatus.REFUNDED,
    "27": CaseStatus.REFUSED,
    "28": CaseStatus.CLOSED,
    "29": CaseStatus.REFUSED,
}
SCAN_STATUS = {
    "GOT": ShipmentStatus.PICKED_UP,
    "TRANSPORT": ShipmentStatus.IN_TRANSIT,
    "SIGNED": ShipmentStatus.DELIVERED,
    "FAILED": ShipmentStatus.EXCEPTION,
}
TRADE_TAGS = ("100", "101", "102", "103", "106")
LOGISTICS_TAG = "104"


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


UnixTime = Annotated[int, Field(ge=_EARLIEST, le=_LATEST), AfterValidator(_from_unix)]
Fen = Annotated[int, Field(ge=0, le=MAX_FEN)]


class PushMessage(WireModel):
    tag: Identifier
    msg_id: Identifier
    data: Document


class ShippedWith(WireModel):
    express_company_id: Identifier
    logistics_code: Identifier


class TradeMessage(WireModel):
    """A thin trade message: what it must name is the order and its shop; the
    order itself (and its `update_time`) comes from `order.orderDetail`."""

    p_id: Identifier
    s_ids: list[Identifier]
    shop_id: Identifier
    order_status: one_of(ORDER_STATUS)
    # The contract's field; the platform's own pay message (the contract's push
    # vector) carries `create_time` instead.
    update_time: UnixTime | None = None
    logistics_msg: ShippedWith | None = None
    cancel_reason: str | None = None


class LogisticsMessage(WireModel):
    p_id: Identifier
    shop_id: Identifier
    logistics_code: Identifier
    express_company_id: Identifier
    action: one_of(SCAN_STATUS)
    action_time: UnixTime
    update_time: UnixTime


class ReturnShipment(WireModel):
    company: str
    tracking_no: Identifier


class AfterSale(WireModel):
    aftersale_id: Identifier
    p_id: Identifier
    s_id: Identifier
    shop_id: Identifier
    aftersale_type: one_of(CASE_KIND)
    aftersale_status: Identifier
    refund_amount: Fen
    reason_code: Identifier
    quality_issue: bool
    update_time: UnixTime
    logistics: ReturnShipment | None = None


class ListedAfterSale(AfterSale):
    """A listed after-sale record: no tag says what happened, its status code does."""

    aftersale_status: one_of(LISTED_STATUS)


class SkuOrder(WireModel):
    sku_order_id: Identifier
    product_name: str
    item_num: Quantity
    origin_amount: Fen
    category: str
    seven_day_return: bool


class Shipment(WireModel):
    tracking_no: Identifier
    company: Identifier


class OrderDetail(WireModel):
    order_id: Identifier
    shop_id: Identifier
    order_status: one_of(ORDER_STATUS)
    order_amount: Fen
    post_amount: Fen
    free_shipping: bool
    create_time: UnixTime
    pay_time: UnixTime | None = None
    update_time: UnixTime
    logistics_info: list[Shipment] = Field(default_factory=list)
    sku_order_list: list[SkuOrder]


def _shop(shop_id: str) -> str:
    return f"{PLATFORM.name}:{shop_id}"


def order_event(detail: OrderDetail) -> OrderSnapshot:
    """An order as `order.orderDetail` and `order.searchList` give it."""
    status = ORDER_STATUS[detail.order_status]
    shipment = detail.logistics_info[0] if detail.logistics_info else None
    return OrderSnapshot(
        order_id=detail.order_id,
        status=status,
        platform_status=detail.order_status,
        total_fen=detail.order_amount,
        shipping_fee_fen=detail.post_amount,
        free_shipping=detail.free_shipping,
        # The detail names no province: the free-shipping surcharge check needs none.
        region="",
        items=tuple(
            Item(
                item_id=sku.sku_order_id,
                title=sku.product_name,
                quantity=sku.item_num,
                price_fen=sku.origin_amount,
                category=sku.category,
                no_reason_return=sku.seven_day_return,
            )
            for sku in detail.sku_order_list
        ),
        modified=detail.update_time,
        paid_at=detail.pay_time,
        # The detail has no ship time: the update that shows it shipped is when it did.
        shipped_at=detail.update_time if status is OrderStatus.SHIPPED else None,
        tracking_no=shipment.tracking_no if shipment else None,
        carrier=shipment.company if shipment else None,
    )


def _pushed_case(case: AfterSale, tag: str) -> CaseSnapshot:
    return _case_event(case, CASE_STATUS[tag])


def _case_event(case: AfterSale, status: CaseStatus) -> CaseSnapshot:
    return CaseSnapshot(
        case_id=case.aftersale_id,
        order_id=case.p_id,
        kind=CASE_KIND[case.aftersale_type],
        status=status,
        platform_status=case.aftersale_status,
        amount_fen=case.refund_amount,
        reason=case.reason_code,
        quality_issue=case.quality_issue,
        modified=case.update_time,
        line_item_id=case.s_id,
        return_tracking_no=case.logistics.tracking_no if case.logistics else None,
    )


def _trace_event(trace: LogisticsMessage, tag: str) -> LogisticsTrace:
    return LogisticsTrace(
        order_id=trace.p_id,
        tracking_no=trace.logistics_code,
        carrier=trace.express_company_id,
        status=SCAN_STATUS[trace.action],
        scanned_at=trace.action_time,
        description=trace.action,
    )


def _thin_trade(trade: TradeMessage, tag: str) -> ThinMessage:
    return ThinMessage(EntityRef.order(PLATFORM.name, trade.p_id))


_TAGS: dict[str, tuple[type[WireModel], Callable[[Any, str], CanonicalEvent]]] = {
    **dict.fromkeys(TRADE_TAGS, (TradeMessage, _thin_trade)),
    LOGISTICS_TAG: (LogisticsMessage, _trace_event),
    **dict.fromkeys(CASE_STATUS, (AfterSale, _pushed_case)),
}
TAGS = tuple(_TAGS)


def push_sign(app_key: str, body: bytes, secret: str) -> str:
    """`event-sign` (platforms.md 1.3): HEX(MD5(app_key + raw body + app_secret))."""
    return hashlib.md5(app_key.encode() + body + secret.encode()).hexdigest()  # noqa: S324 - the platform's scheme


def param_json(business: dict[str, Any]) -> str:
    """The business parameters as the SDK sends and signs them: keys sorted
    recursively, compact, non-ASCII unescaped; a field without a value left out."""
    present = {name: value for name, value in business.items() if not has_no_value(value)}
    return json.dumps(present, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def api_sign(credentials: AppCredentials, method: str, params: str, timestamp: str) -> str:
    """The API's sign (platforms.md 2.4): HMAC-SHA256 keyed with the secret over
    the secret-wrapped `name + value` join, lower-case hex."""
    secret = credentials.app_secret
    joined = (
        f"{secret}app_key{credentials.app_key}method{method}param_json{params}"
        f"timestamp{timestamp}v2{secret}"
    )
    return hmac.new(secret.encode(), joined.encode(), hashlib.sha256).hexdigest()


def method_path(method: str) -> str:
    """Where a method answers below the API URL: `order.orderDetail` -> `order/orderDetail`."""
    return method.replace(".", "/")


@dataclass(frozen=True)
class _Listing:
    start: str
    end: str
    extra: dict[str, Any]


LISTINGS = {
    ORDER_LISTING: _Listing("update_time_start", "update_time_end", {"order_by": "update_time"}),
    CASE_LISTING: _Listing("update_start_time", "update_end_time", {}),
}


class Doudian(SessionCalls):
    name = "doudian"
    channel = None  # every message is pushed
    listings = tuple(LISTINGS)
    # Both listings are by update time: a changed case is listed again.
    rereads_open_cases = False
    # One push carries an array of messages, each stored on its own.
    pushes_arrays = True

    def verify(
        self, request: InboundRequest, credentials: AppCredentials, now: datetime
    ) -> VerifiedDelivery:
        """`app-id` and `event-sign` (platforms.md 1.3). The push carries no
        timestamp: a replay is a duplicate of messages already held."""
        headers = {name.lower(): value for name, value in request.headers.items()}
        app_key = headers.get(APP_HEADER, "")
        if not app_key:
            raise WebhookRejectedError(401, "missing_app_key", f"header '{APP_HEADER}' is missing")
        if app_key != credentials.app_key:
            raise WebhookRejectedError(401, "unknown_app_key", "app-id is not known to ShopHook")
        provided = headers.get(SIGN_HEADER, "")
        if not provided:
            raise WebhookRejectedError(
                401, "missing_signature", f"header '{SIGN_HEADER}' is missing"
            )
        expected = push_sign(app_key, request.raw_body, credentials.app_secret)
        if not signatures_match(expected, provided.lower()):
            raise WebhookRejectedError(401, "bad_signature", "event-sign does not match the body")
        return VerifiedDelivery(self.name, request.raw_body, {})

    def messages(self, delivery: VerifiedDelivery) -> tuple[VerifiedDelivery, ...]:
        """Each message of the array as a delivery of its own (an array of one, so
        that a quarantined one is reprocessed the same way); the URL checks (tag
        `0`) left out."""
        try:
            pushed = json.loads(delivery.raw_body)
        except ValueError as error:
            raise MalformedMessageError("body", f"not valid JSON ({error})") from None
        if not isinstance(pushed, list):
            raise MalformedMessageError("body", "expected a JSON array of messages")
        return tuple(
            VerifiedDelivery(
                self.name,
                json.dumps([message], ensure_ascii=False, separators=(",", ":")).encode(),
                _message_params(message),
            )
            for message in pushed
            if not (isinstance(message, dict) and str(message.get("tag")) == CHECK_TAG)
        )

    def message_id(self, delivery: VerifiedDelivery) -> str | None:
        return delivery.params.get("msg_id") or None

    def parse(self, delivery: VerifiedDelivery) -> Inbound:
        """A trade message is thin (no amounts, no items): a ThinMessage naming the
        order, which `read` completes with `order.orderDetail`."""
        message = self._message(delivery)
        if message.tag not in TAGS:
            raise MalformedMessageError(
                "tag", f"unknown tag {message.tag!r}; expected one of {', '.join(TAGS)}"
            )
        model, to_event = _TAGS[message.tag]
        data = validate_json(model, message.data, "data")
        return Inbound(
            platform=self.name,
            message_id=message.msg_id,
            topic=message.tag,
            shop_id=_shop(data.shop_id),
            event=to_event(data, message.tag),
        )

    def _message(self, delivery: VerifiedDelivery) -> PushMessage:
        try:
            [message] = json.loads(delivery.raw_body)
        except ValueError:
            raise MalformedMessageError("body", "expected an array of one message") from None
        return validate_decoded(PushMessage, message, "body[0]")

    def ack(self) -> dict[str, Any]:
        return {"code": 0, "msg": "success"}

    def failure(self, code: str, message: str) -> dict[str, Any]:
        # The platform reads only `code` (non-zero: redeliver); ShopHook's own code
        # goes in the text so that the reason is still said.
        return {"code": 1, "msg": f"{code}: {message}"}

    def authorize_url(
        self, base_url: str, credentials: AppCredentials, redirect_uri: str, state: str
    ) -> str:
        query = urlencode(
            {"app_key": credentials.app_key, "state": state, "redirect_uri": redirect_uri}
        )
        return f"{base_url}/authorize?{query}"

    def exchange_code(
        self,
        base_url: str,
        credentials: AppCredentials,
        redirect_uri: str,
        code: str,
        now: datetime,
    ) -> ConnectedShop:
        """The code for tokens with the signed API method `token.create` (not at the
        OAuth URL: the platform's token methods are API methods)."""
        data = self._token_call(
            credentials, TOKEN_CREATE, {"code": code, "grant_type": "authorization_code"}, now
        )
        if has_no_value(data.get("shop_id")):
            raise OAuthExchangeError("the token answer names no shop_id")
        return ConnectedShop(
            shop_id=_shop(str(data["shop_id"])),
            name=str(data.get("shop_name") or ""),
            tokens=tokens_from(data, now),
        )

    def refresh(
        self, base_url: str, credentials: AppCredentials, refresh_token: str, now: datetime
    ) -> ShopTokens:
        business = {"refresh_token": refresh_token, "grant_type": "refresh_token"}
        return tokens_from(self._token_call(credentials, TOKEN_REFRESH, business, now), now)

    def _token_call(
        self, credentials: AppCredentials, method: str, business: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        api_url = settings().platform(self.name).api_url
        if api_url is None:
            raise OAuthExchangeError("no Doudian-style API URL is configured")
        # Without a session: the token methods are how a session is had.
        result, data = self.answered(ApiSession(api_url, credentials, "", now), method, business)
        if result.outcome is not CallOutcome.SUCCESS:
            raise OAuthExchangeError(f"{method} refused: {result.code} {result.message}")
        return data

    def action_request(
        self,
        shop_id: str,
        action: Action,
        case: CaseSnapshot,
        reason: str,
        address: ReturnAddress | None,
    ) -> tuple[str, dict[str, Any]]:
        item: dict[str, Any] = {"aftersale_id": case.case_id}
        if action is Action.REFUSE:
            goods = case.kind in GOODS_COME_BACK and case.status is CaseStatus.REQUESTED
            item |= {"reason": reason or "refused", "remark": reason}
            return OPERATE_METHOD, {
                "type": REFUSE_RETURN if goods else REFUSE_REFUND,
                "items": [item],
            }
        if action is Action.AGREE_RETURN:
            if address is not None:
                item["logistics"] = {
                    "receiver_address": address.address,
                    "receiver_name": address.name,
                    "receiver_tel": address.mobile,
                }
            return OPERATE_METHOD, {"type": AGREE_RETURN, "items": [item | {"remark": reason}]}
        if case.kind is CaseKind.EXCHANGE:
            raise UnsupportedActionError(
                "a Doudian-style exchange is reshipped in the platform's own tools, not refunded"
            )
        # Agreeing a refund once the goods are back is confirming them: one call.
        returned = action is Action.CONFIRM_RETURN_RECEIVED or case.status is CaseStatus.RETURNED
        kind = CONFIRM_AND_REFUND if returned else AGREE_REFUND
        return OPERATE_METHOD, {"type": kind, "items": [item | {"remark": reason}]}

    def ship_request(
        self, order_id: str, tracking_no: str, carrier: str
    ) -> tuple[str, dict[str, Any]]:
        return SHIP_METHOD, {
            "order_id": order_id,
            "company_code": carrier,
            "logistics_code": tracking_no,
        }

    def answered(
        self, session: ApiSession, method: str, business: dict[str, Any]
    ) -> tuple[CallResult, dict[str, Any]]:
        """One API call (platforms.md 2.4): the result, and on success `data`."""
        params = param_json(business)
        timestamp = str(int(session.now.timestamp()))
        query = {
            "app_key": session.credentials.app_key,
            "method": method,
            "v": "2",
            "timestamp": timestamp,
            "access_token": session.access_token,
            "sign_method": "hmac-sha256",
            "sign": api_sign(session.credentials, method, params, timestamp),
        }
        failed, answer = post(
            f"{session.api_url}/{method_path(method)}",
            settings().outbound_timeout,
            params={name: value for name, value in query.items() if value},
            data=params.encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        if failed is not None:
            return failed, {}
        return _result(answer)

    def pull(
        self, session: ApiSession, shop_id: str, listing: str, window: Window, page: str | None
    ) -> Pulled:
        """The order and after-sale lists by update time (platforms.md 2.4); pages
        are counted from 0."""
        found = LISTINGS[listing]
        page_no = int(page or 0)
        business = {
            found.start: int(window.start.timestamp()),
            found.end: int(window.end.timestamp()),
            "page": page_no,
            "size": PAGE_SIZE,
            **found.extra,
        }
        result, data = self.answered(session, listing, business)
        if result.outcome is not CallOutcome.SUCCESS:
            return Pulled(refused=result)
        if listing == ORDER_LISTING:
            rows = data.get("shop_order_list") or []
            events = [
                order_event(validate_decoded(OrderDetail, row, f"shop_order_list[{index}]"))
                for index, row in enumerate(rows)
            ]
            more = (page_no + 1) * PAGE_SIZE < int(data.get("total") or 0)
        else:
            rows = data.get("items") or []
            events = [_listed_case(row, index) for index, row in enumerate(rows)]
            more = bool(data.get("has_more"))
        records = tuple(pulled_record(self.name, shop_id, listing, event) for event in events)
        return Pulled(records, str(page_no + 1) if more and records else None)

    def read(self, session: ApiSession, shop_id: str, ref: EntityRef) -> Pulled | None:
        """An order as it is now (`order.orderDetail`: what completes a thin trade
        message); an after-sale is pushed whole and listed by update time, so no
        call here re-reads one."""
        if ref.kind is not EntityKind.ORDER:
            return None
        result, data = self.answered(session, DETAIL_METHOD, {"shop_order_id": ref.entity_id})
        if result.outcome is not CallOutcome.SUCCESS:
            return Pulled(refused=result)
        detail = validate_decoded(OrderDetail, data.get("shop_order_detail"), "shop_order_detail")
        return Pulled((pulled_record(self.name, shop_id, DETAIL_METHOD, order_event(detail)),))


def _message_params(message: object) -> dict[str, str]:
    """The message id, when it can be read at all (it keys the quarantine)."""
    msg_id = message.get("msg_id") if isinstance(message, dict) else None
    return {"msg_id": str(msg_id)} if isinstance(msg_id, str | int) and msg_id != "" else {}


def _listed_case(row: object, index: int) -> CaseSnapshot:
    where = f"items[{index}].aftersale_info"
    info = row.get("aftersale_info") if isinstance(row, dict) else None
    case = validate_decoded(ListedAfterSale, info, where)
    return _case_event(case, LISTED_STATUS[case.aftersale_status])


def _result(answer: object) -> tuple[CallResult, dict[str, Any]]:
    """Every answer as one CallResult (platforms.md 2.4)."""
    if not isinstance(answer, dict):
        return CallResult(CallOutcome.RETRYABLE, "not_an_object", "unreadable answer", True), {}
    code = answer.get("code")
    sub_code = str(answer.get("sub_code") or "")
    message = str(answer.get("sub_msg") or answer.get("msg") or "")
    if code == SUCCESS_CODE:
        data = answer.get("data")
        return CallResult(CallOutcome.SUCCESS), data if isinstance(data, dict) else {}
    if code == INVALID_TOKEN_CODE and sub_code in INVALID_TOKEN_SUB_CODES:
        outcome = CallOutcome.REFRESH_TOKEN
    elif code == RATE_LIMITED_CODE or sub_code == RATE_LIMITED_SUB_CODE:
        outcome = CallOutcome.RETRYABLE
    elif sub_code == ALREADY_DONE_SUB_CODE:
        outcome = CallOutcome.ALREADY_DONE
    else:
        outcome = CallOutcome.PERMANENT
    return CallResult(outcome, str(sub_code or code), message), {}


PLATFORM = Doudian()
