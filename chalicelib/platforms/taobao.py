"""Taobao-style marketplace: TOP push webhooks (platforms.md 1.1) and its
message channel, TMC, drained over the API (1.4)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

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
    ThinMessage,
)
from chalicelib.domain.pulls import Window, pulled_record
from chalicelib.platforms.api import CallOutcome, CallResult, post_signed
from chalicelib.platforms.base import (
    ApiSession,
    AppCredentials,
    Consumed,
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
    SIGNERS,
    hmac_sha256_sign,
    joined_params,
    signatures_match,
)
from chalicelib.platforms.wire import (
    Document,
    Identifier,
    Quantity,
    WireModel,
    WireTime,
    Yuan,
    check_timestamp,
    format_wire_time,
    one_of,
    validate_decoded,
    validate_json,
)
from chalicelib.settings import settings

# TOP error codes: 7 rate limited, 15 remote service error, 27 invalid session.
API_OUTCOMES = {
    "7": CallOutcome.RETRYABLE,
    "15": CallOutcome.RETRYABLE,
    "27": CallOutcome.REFRESH_TOKEN,
}
# The refund or trade is no longer in the status the call needs (agreed, shipped).
ALREADY_DONE_SUB_CODE = "isv.status-not-allowed"

NAME = "taobao"
DEFAULT_SIGN_METHOD = "md5"  # the SPI's, when a push names none
# The header naming the headers a push signs besides its query (comma-separated).
SIGN_LIST_HEADER = "top-sign-list"

TRADE_STATUS = {
    "WAIT_BUYER_PAY": OrderStatus.PENDING_PAYMENT,
    "WAIT_SELLER_SEND_GOODS": OrderStatus.PAID,
    "WAIT_BUYER_CONFIRM_GOODS": OrderStatus.SHIPPED,
    "TRADE_FINISHED": OrderStatus.COMPLETED,
    "TRADE_CLOSED": OrderStatus.CLOSED,
    "TRADE_CLOSED_BY_TAOBAO": OrderStatus.CLOSED,
}
REFUND_STATUS = {
    "WAIT_SELLER_AGREE": CaseStatus.REQUESTED,
    "WAIT_BUYER_RETURN_GOODS": CaseStatus.AWAITING_RETURN,
    "WAIT_SELLER_CONFIRM_GOODS": CaseStatus.RETURNED,
    "SELLER_REFUSE_BUYER": CaseStatus.REFUSED,
    "CLOSED": CaseStatus.CLOSED,
    "SUCCESS": CaseStatus.REFUNDED,
}
SCAN_STATUS = {
    "CONSIGN": ShipmentStatus.AWAITING_PICKUP,
    "GOT": ShipmentStatus.PICKED_UP,
    "TRANSPORT": ShipmentStatus.IN_TRANSIT,
    "SENT_SCAN": ShipmentStatus.IN_TRANSIT,
    "SIGNED": ShipmentStatus.DELIVERED,
    "FAILED": ShipmentStatus.EXCEPTION,
}


class MessageId(WireModel):
    id: Identifier


class Push(MessageId):
    topic: str
    user_id: Identifier
    user_nick: str = ""
    pub_time: WireTime
    content: Document


class TradeItem(WireModel):
    oid: Identifier
    title: str
    num: Quantity
    price: Yuan
    category: str
    no_reason_return: bool


class Trade(WireModel):
    tid: Identifier
    status: one_of(TRADE_STATUS)
    payment: Yuan
    post_fee: Yuan
    free_shipping: bool
    receiver_state: str
    modified: WireTime
    pay_time: WireTime | None = None
    consign_time: WireTime | None = None
    out_sid: str | None = None
    company_code: str | None = None
    items: list[TradeItem]


class Refund(WireModel):
    refund_id: Identifier
    tid: Identifier
    oid: Identifier
    refund_fee: Yuan
    refund_phase: Literal["onsale", "aftersale"]
    has_good_return: bool
    good_status: Literal["BUYER_NOT_RECEIVED", "BUYER_RECEIVED", "BUYER_RETURNED_GOODS"]
    reason: str
    quality_issue: bool
    status: one_of(REFUND_STATUS)
    modified: WireTime
    return_out_sid: str | None = None


class ThinTrade(WireModel):
    """What a trade content carries at least: without `items` it is thin (a TMC
    content, platforms.md 1.4) and the trade is read with its detail call."""

    tid: Identifier
    items: list[Any] | None = None

    def needs(self) -> EntityRef | None:
        return EntityRef.order(NAME, self.tid) if self.items is None else None


class ThinRefund(WireModel):
    """What a refund content carries at least: without `refund_fee` it is thin."""

    refund_id: Identifier
    refund_fee: Any = None

    def needs(self) -> EntityRef | None:
        return EntityRef.case(NAME, self.refund_id) if self.refund_fee is None else None


class Trace(WireModel):
    tid: Identifier
    out_sid: str
    company_code: str
    action: one_of(SCAN_STATUS)
    action_time: WireTime
    desc: str


def _listed_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers named in `top-sign-list`, as the SPI verifier signs them: each
    once, by the name listed, with its URL-decoded value ("" when absent)."""
    by_name = {name.lower(): value for name, value in headers.items()}
    listed = dict.fromkeys(name for name in by_name.get(SIGN_LIST_HEADER, "").split(",") if name)
    return [(name, unquote_plus(by_name.get(name.lower(), ""))) for name in listed]


def _trade_event(trade: Trade) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=trade.tid,
        status=TRADE_STATUS[trade.status],
        platform_status=trade.status,
        total_fen=trade.payment,
        shipping_fee_fen=trade.post_fee,
        free_shipping=trade.free_shipping,
        region=trade.receiver_state,
        items=tuple(
            Item(
                item_id=item.oid,
                title=item.title,
                quantity=item.num,
                price_fen=item.price,
                category=item.category,
                no_reason_return=item.no_reason_return,
            )
            for item in trade.items
        ),
        modified=trade.modified,
        paid_at=trade.pay_time,
        shipped_at=trade.consign_time,
        tracking_no=trade.out_sid or None,
        carrier=trade.company_code or None,
    )


def _refund_event(refund: Refund) -> CaseSnapshot:
    return CaseSnapshot(
        case_id=refund.refund_id,
        order_id=refund.tid,
        line_item_id=refund.oid,
        kind=CaseKind.RETURN_REFUND if refund.has_good_return else CaseKind.REFUND_ONLY,
        status=REFUND_STATUS[refund.status],
        platform_status=refund.status,
        amount_fen=refund.refund_fee,
        reason=refund.reason,
        quality_issue=refund.quality_issue,
        modified=refund.modified,
        return_tracking_no=refund.return_out_sid or None,
        platform_phase=refund.refund_phase,
    )


def _trace_event(trace: Trace) -> LogisticsTrace:
    return LogisticsTrace(
        order_id=trace.tid,
        tracking_no=trace.out_sid,
        carrier=trace.company_code,
        status=SCAN_STATUS[trace.action],
        scanned_at=trace.action_time,
        description=trace.desc,
    )


# Topic -> the content's model, its canonical event, and the least a thin one carries.
_TOPICS: dict[
    str,
    tuple[type[WireModel], Callable[[Any], CanonicalEvent], type[ThinTrade | ThinRefund] | None],
] = {
    **dict.fromkeys(
        (
            "taobao_trade_TradeCreate",
            "taobao_trade_TradeBuyerPay",
            "taobao_trade_TradeSellerShip",
            "taobao_trade_TradeSuccess",
            "taobao_trade_TradeClose",
        ),
        (Trade, _trade_event, ThinTrade),
    ),
    **dict.fromkeys(
        (
            "taobao_refund_RefundCreated",
            "taobao_refund_RefundSellerAgreeAgreement",
            "taobao_refund_RefundSellerRefuseAgreement",
            "taobao_refund_RefundBuyerReturnGoods",
            "taobao_refund_RefundSuccess",
            "taobao_refund_RefundClosed",
        ),
        (Refund, _refund_event, ThinRefund),
    ),
    "taobao_logistics_LogisticsTrace": (Trace, _trace_event, None),
}
TOPICS = tuple(_TOPICS)

# Reconciliation listings (platforms.md 2.3): method -> (the answer's list, as
# (plural, singular)), the record's model, its canonical event.
LISTINGS: dict[str, tuple[tuple[str, str], type[WireModel], Callable[[Any], CanonicalEvent]]] = {
    "taobao.trades.sold.increment.get": (("trades", "trade"), Trade, _trade_event),
    "taobao.refunds.receive.get": (("refunds", "refund"), Refund, _refund_event),
}
PAGE_SIZE = 100
# The detail calls that complete a thin content (platforms.md 1.4): entity kind ->
# the method, the id it reads by, the record in its answer, and that record's model.
DETAILS: dict[
    EntityKind, tuple[str, str, str, type[WireModel], Callable[[Any], CanonicalEvent]]
] = {
    EntityKind.ORDER: ("taobao.trade.fullinfo.get", "tid", "trade", Trade, _trade_event),
    EntityKind.CASE: ("taobao.refund.get", "refund_id", "refund", Refund, _refund_event),
}

# TMC over HTTP (platforms.md 1.4): what one consume returns and one confirm takes.
TMC_BATCH = 200
TMC_PERMIT = "taobao.tmc.user.permit"
TMC_CANCEL = "taobao.tmc.user.cancel"
TMC_CONSUME = "taobao.tmc.messages.consume"
TMC_CONFIRM = "taobao.tmc.messages.confirm"


class Tmc:
    """The message channel over the TOP API: each consumed message is the push
    body of 1.1 under another envelope (`pub_app_key` besides), so it is read
    by the push's own parser."""

    batch = TMC_BATCH

    def __init__(self, api: SessionCalls, platform: str) -> None:
        self.api, self.platform = api, platform

    def permit(self, session: ApiSession) -> CallResult:
        # No `topics`: the app's own.
        return self.api.answered(session, TMC_PERMIT, {})[0]

    def cancel(self, session: ApiSession, nick: str) -> CallResult:
        return self.api.answered(session, TMC_CANCEL, {"nick": nick})[0]

    def consume(self, session: ApiSession) -> Consumed:
        result, body = self.api.answered(session, TMC_CONSUME, {"quantity": self.batch})
        if result.outcome is not CallOutcome.SUCCESS:
            return Consumed(refused=result)
        messages = (body.get("messages") or {}).get("tmc_message") or []
        return Consumed(
            tuple(
                VerifiedDelivery(
                    self.platform,
                    json.dumps(message, ensure_ascii=False).encode(),
                    {"channel": TMC_CONSUME},
                )
                for message in messages
            )
        )

    def confirm(self, session: ApiSession, message_ids: Sequence[str]) -> CallResult:
        assert len(message_ids) <= self.batch
        return self.api.answered(session, TMC_CONFIRM, {"s_message_ids": ",".join(message_ids)})[0]


class Taobao(OneMessagePush, SessionCalls):
    name = NAME
    listings = tuple(LISTINGS)
    # The refund list is by modified: every change to a refund is listed.
    rereads_open_cases = False

    def __init__(self) -> None:
        self.channel = Tmc(self, self.name)

    def verify(
        self, request: InboundRequest, credentials: AppCredentials, now: datetime
    ) -> VerifiedDelivery:
        params = single_valued(request.query)
        check_app_key(params, credentials)
        provided = require_param(params, "sign", "missing_signature")
        signer = SIGNERS.get(params.get("sign_method") or DEFAULT_SIGN_METHOD)
        if signer is None:
            raise WebhookRejectedError(
                401, "unsupported_sign_method", "sign_method must be 'md5' or 'hmac-sha256'"
            )
        # Every query parameter, blank ones too, and the headers the platform lists.
        signed = single_valued(
            [
                *((name, value) for name, value in params.items() if name != "sign"),
                *_listed_headers(request.headers),
            ]
        )
        expected = signer(credentials.app_secret, joined_params(signed) + request.raw_body)
        if not signatures_match(expected, provided):
            raise WebhookRejectedError(401, "bad_signature", "sign does not match the request")
        check_timestamp(params, now)
        return VerifiedDelivery(self.name, request.raw_body, params)

    def message_id(self, delivery: VerifiedDelivery) -> str | None:
        try:
            return validate_json(MessageId, delivery.raw_body, "body").id
        except MalformedMessageError:
            return None

    def parse(self, delivery: VerifiedDelivery) -> Inbound:
        push = validate_json(Push, delivery.raw_body, "body")
        if push.topic not in _TOPICS:
            raise MalformedMessageError(
                "topic", f"unknown topic {push.topic!r}; expected one of {', '.join(TOPICS)}"
            )
        model, to_event, least = _TOPICS[push.topic]
        needs = validate_json(least, push.content, "content").needs() if least else None
        return Inbound(
            platform=self.name,
            message_id=push.id,
            topic=push.topic,
            shop_id=f"{self.name}:{push.user_id}",
            event=ThinMessage(needs)
            if needs
            else to_event(validate_json(model, push.content, "content")),
        )

    def ack(self) -> dict[str, Any]:
        return {"success": True}

    def failure(self, code: str, message: str) -> dict[str, Any]:
        return {"success": False, "code": code, "msg": message}

    def authorize_url(
        self, base_url: str, credentials: AppCredentials, redirect_uri: str, state: str
    ) -> str:
        oauth = oauth_session(credentials, redirect_uri, "client_secret_post")
        url, _ = oauth.create_authorization_url(f"{base_url}/authorize", state=state, view="web")
        return url

    def exchange_code(
        self,
        base_url: str,
        credentials: AppCredentials,
        redirect_uri: str,
        code: str,
        now: datetime,
    ) -> ConnectedShop:
        oauth = oauth_session(credentials, redirect_uri, "client_secret_post")
        answer = fetch(oauth, f"{base_url}/token", "POST", code=code)
        if not answer.get("taobao_user_id"):
            raise OAuthExchangeError("the token answer names no taobao_user_id")
        return ConnectedShop(
            shop_id=f"{self.name}:{answer['taobao_user_id']}",
            name=str(answer.get("taobao_user_nick") or ""),
            tokens=tokens_from(answer, now),
        )

    def action_request(
        self,
        shop_id: str,
        action: Action,
        case: CaseSnapshot,
        reason: str,
        address: ReturnAddress | None,
    ) -> tuple[str, dict[str, Any]]:
        """The v2 refund calls (platforms.md 2.1): each names the refund's phase and
        version, and the platform refuses a stale version."""
        phase = case.platform_phase
        if phase is None:
            raise UnsupportedActionError(
                "the refund's phase (onsale or aftersale) is not known yet: "
                "it comes with the platform's next message about this refund"
            )
        version = str(int(case.modified.timestamp() * 1000))
        refund = {"refund_id": case.case_id, "refund_phase": phase, "refund_version": version}
        if action in (Action.AGREE_REFUND, Action.CONFIRM_RETURN_RECEIVED):
            # Confirming returned goods is agreeing their refund on this platform.
            return "taobao.rp.refunds.agree", {
                "refund_infos": "|".join((case.case_id, str(case.amount_fen), version, phase))
            }
        if action is Action.REFUSE and case.status is CaseStatus.RETURNED:
            # The platform takes a reason from its own list here, by number, not text.
            if not (reason.isascii() and reason.isdigit()):
                raise UnsupportedActionError(
                    "refusing goods that came back takes the platform's refuse reason id "
                    "(a number from its list) as the reason"
                )
            return "taobao.rp.returngoods.refuse", {**refund, "refuse_reason_id": reason}
        if action is Action.REFUSE:
            return "taobao.refund.refuse", {**refund, "refuse_message": reason}
        if action is Action.AGREE_RETURN and address is not None and address.postcode:
            return "taobao.rp.returngoods.agree", {
                **refund,
                "name": address.name,
                "address": address.address,
                "post": address.postcode,
                "mobile": address.mobile,
            }
        raise UnsupportedActionError(
            "agreeing a return needs a return address with its postcode (return_address.postcode)"
        )

    def ship_request(
        self, order_id: str, tracking_no: str, carrier: str
    ) -> tuple[str, dict[str, Any]]:
        return "taobao.logistics.offline.send", {
            "tid": order_id,
            "out_sid": tracking_no,
            "company_code": carrier,
        }

    def answered(
        self, session: ApiSession, method: str, business: dict[str, Any]
    ) -> tuple[CallResult, dict[str, Any]]:
        """One TOP API call (platforms.md 2.1), signed hmac-sha256: the result,
        and on success the body under its success key."""
        form = {
            "method": method,
            "app_key": session.credentials.app_key,
            "session": session.access_token,
            "timestamp": format_wire_time(session.now),
            "v": "2.0",
            "format": "json",
            "sign_method": "hmac-sha256",
            **{name: str(value) for name, value in business.items() if value is not None},
        }
        failed, answer = post_signed(
            session.api_url,
            form,
            hmac_sha256_sign,
            session.credentials.app_secret,
            settings().outbound_timeout,
        )
        if failed is not None:
            return failed, {}
        success_key = method.removeprefix("taobao.").replace(".", "_") + "_response"
        if isinstance(answer, dict) and isinstance(answer.get(success_key), dict):
            return CallResult(CallOutcome.SUCCESS), answer[success_key]
        error = answer.get("error_response", {}) if isinstance(answer, dict) else {}
        code = str(error.get("code", ""))
        message = " / ".join(str(error[key]) for key in ("msg", "sub_msg") if error.get(key))
        if error.get("sub_code") == ALREADY_DONE_SUB_CODE:
            return CallResult(CallOutcome.ALREADY_DONE, code, message), {}
        return CallResult(API_OUTCOMES.get(code, CallOutcome.PERMANENT), code, message), {}

    def pull(
        self, session: ApiSession, shop_id: str, listing: str, window: Window, page: str | None
    ) -> Pulled:
        """The incremental trade and refund lists (platforms.md 2.3), by modified."""
        container, model, to_event = LISTINGS[listing]
        page_no = int(page or 1)
        result, body = self.answered(
            session,
            listing,
            {
                "start_modified": format_wire_time(window.start),
                "end_modified": format_wire_time(window.end),
                "page_no": page_no,
                "page_size": PAGE_SIZE,
                "use_has_next": "true",
                "fields": ",".join(model.model_fields),
            },
        )
        if result.outcome is not CallOutcome.SUCCESS:
            return Pulled(refused=result)
        plural, singular = container
        rows = (body.get(plural) or {}).get(singular) or []
        records = tuple(
            pulled_record(
                self.name,
                shop_id,
                listing,
                to_event(validate_decoded(model, row, f"{plural}.{singular}[{index}]")),
            )
            for index, row in enumerate(rows)
        )
        return Pulled(records, str(page_no + 1) if body.get("has_next") is True else None)

    def read(self, session: ApiSession, shop_id: str, ref: EntityRef) -> Pulled:
        """A trade (`taobao.trade.fullinfo.get`) or refund (`taobao.refund.get`) as
        it is now, with the fields of a pushed content."""
        method, id_field, found, model, to_event = DETAILS[ref.kind]
        result, body = self.answered(
            session, method, {id_field: ref.entity_id, "fields": ",".join(model.model_fields)}
        )
        if result.outcome is not CallOutcome.SUCCESS:
            return Pulled(refused=result)
        record = to_event(validate_decoded(model, body.get(found), found))
        return Pulled((pulled_record(self.name, shop_id, method, record),))

    def refresh(
        self, base_url: str, credentials: AppCredentials, refresh_token: str, now: datetime
    ) -> ShopTokens:
        oauth = oauth_session(credentials, "", "client_secret_post")
        answer = fetch(
            oauth,
            f"{base_url}/token",
            "POST",
            grant_type="refresh_token",
            refresh_token=refresh_token,
        )
        return tokens_from(answer, now)


PLATFORM = Taobao()
