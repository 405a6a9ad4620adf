"""The simulated Taobao-style platform: TOP OAuth, the TOP API (form fields,
signed hmac-sha256, `error_response` with numeric codes), its SPI pushes and
a trade's story as it pushes it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.signing import SIGNERS, joined_params
from chalicelib.platforms.taobao import ALREADY_DONE_SUB_CODE, TMC_BATCH
from chalicelib.platforms.wire import format_wire_time, parse_wire_time
from simulator.platforms.base import (
    NO_TOKEN_METHODS,
    ApiMethod,
    ArgumentRefusedError,
    ChannelMethods,
    FormApi,
    HeldRecord,
    Query,
    Refusal,
    listed_between,
    page_size,
    wire_time_after,
)
from simulator.webhooks import Message, SignedWebhook

DEMO_USER_ID = "2200000001"
PHASES = ("onsale", "aftersale")
# Refusal -> TOP's code, msg, sub_code, sub_msg ({} is the detail).
REFUSALS = {
    Refusal.UNKNOWN_METHOD: ("22", "Invalid method {}", "", ""),
    Refusal.BAD_SIGNATURE: ("25", "Invalid signature", "", ""),
    Refusal.INVALID_SESSION: ("27", "Invalid session", "", ""),
    Refusal.RATE_LIMITED: ("7", "App Call Limited", "", ""),
    Refusal.MISSING_ARGUMENT: (
        "40",
        "Missing required arguments",
        "isv.missing-parameter",
        "Missing required arguments: {}",
    ),
    Refusal.INVALID_ARGUMENT: ("41", "Invalid arguments", "isv.invalid-parameter", "{}"),
    Refusal.ALREADY_DONE: ("15", "Remote service error", ALREADY_DONE_SUB_CODE, "状态不允许此操作"),
}


def _invalid_refund_info(info: str) -> str | None:
    """`refund_id|amount_in_fen|refund_version|refund_phase`, or why it is not."""
    parts = info.split("|")
    if len(parts) != 4 or not parts[0]:
        return f"refund_infos: {info!r} is not refund_id|amount|version|phase"
    _, amount, version, phase = parts
    if not amount.isdigit() or not version.isdigit():
        return f"refund_infos: {info!r} needs the amount in fen and the version in ms"
    if phase not in PHASES:
        return f"refund_infos: {info!r} names no refund phase ({', '.join(PHASES)})"
    return None


def _invalid_refund_infos(business: Mapping[str, Any], seller: str) -> str | None:
    return next(
        filter(None, map(_invalid_refund_info, str(business["refund_infos"]).split(","))), None
    )


def _refunds_agreed(business: Mapping[str, Any]) -> str:
    """The refunds a refunds.agree call acts on."""
    return ",".join(sorted(info.split("|")[0] for info in str(business["refund_infos"]).split(",")))


def _invalid_refund_step(business: Mapping[str, Any], seller: str) -> str | None:
    if business["refund_phase"] not in PHASES:
        return f"refund_phase must be one of {', '.join(PHASES)}"
    if not str(business["refund_version"]).isdigit():
        return "refund_version must be the refund's modified time in ms"
    return None


# Method -> its required business fields, their checks and its answer (platforms.md 2.1).
REFUND_STEP = ("refund_id", "refund_phase", "refund_version")
METHODS = {
    "taobao.rp.refunds.agree": ApiMethod(
        ("refund_infos",),
        {"succ": True, "msg": "退款成功"},
        _invalid_refund_infos,
        _refunds_agreed,
    ),
    "taobao.refund.refuse": ApiMethod(
        (*REFUND_STEP, "refuse_message"), {"is_success": True}, _invalid_refund_step
    ),
    "taobao.rp.returngoods.agree": ApiMethod(
        (*REFUND_STEP, "name", "address", "post", "mobile"),
        {"is_success": True},
        _invalid_refund_step,
    ),
    "taobao.rp.returngoods.refuse": ApiMethod(
        (*REFUND_STEP, "refuse_reason_id"), {"is_success": True}, _invalid_refund_step
    ),
    "taobao.logistics.offline.send": ApiMethod(
        ("tid", "out_sid", "company_code"), {"shipping": {"is_success": True}}
    ),
}


TRADES = "taobao.trades.sold.increment.get"
REFUNDS = "taobao.refunds.receive.get"
# Topic prefix -> the listing that shows its records, and the record's id field.
LISTED = {"taobao_trade_": (TRADES, "tid"), "taobao_refund_": (REFUNDS, "refund_id")}
INCREMENT_FIELDS = (
    "start_modified",
    "end_modified",
    "page_no",
    "page_size",
    "use_has_next",
    "fields",
)


def _increment(listing: str, plural: str, singular: str) -> Query:
    """An incremental list by modified (platforms.md 2.3): at most a day at a time,
    100 a page, `has_next` when asked for it."""

    def answer(business: Mapping[str, Any], held: Sequence[HeldRecord]) -> dict[str, Any]:
        size = page_size(business, "page_size", 100)
        page = int(business["page_no"])
        records, total = listed_between(
            held,
            business["start_modified"],
            business["end_modified"],
            page,
            size,
            longest=timedelta(days=1),
        )
        return {plural: {singular: records}, "has_next": page * size < total}

    return Query(listing, INCREMENT_FIELDS, answer)


def _detail(
    id_field: str, singular: str
) -> Callable[[Mapping[str, Any], Sequence[HeldRecord]], dict[str, Any]]:
    """A detail call (platforms.md 1.4): the one record held under that id."""

    def answer(business: Mapping[str, Any], held: Sequence[HeldRecord]) -> dict[str, Any]:
        wanted = str(business[id_field])
        found = next((record.record for record in held if record.entity_id == wanted), None)
        if found is None:
            raise ArgumentRefusedError(f"{id_field}: no {singular} {wanted} in this shop")
        return {singular: found}

    return answer


QUERIES = {
    TRADES: _increment(TRADES, "trades", "trade"),
    REFUNDS: _increment(REFUNDS, "refunds", "refund"),
    "taobao.trade.fullinfo.get": Query(TRADES, ("tid", "fields"), _detail("tid", "trade")),
    "taobao.refund.get": Query(REFUNDS, ("refund_id", "fields"), _detail("refund_id", "refund")),
}


# What a thin content (platforms.md 1.4) leaves out: the detail call has it.
def _quantity(business: Mapping[str, Any]) -> int:
    return page_size(business, "quantity", TMC_BATCH) if business.get("quantity") else 100


def _confirmed(business: Mapping[str, Any]) -> list[str]:
    ids = [part for part in str(business["s_message_ids"]).split(",") if part]
    if len(ids) > TMC_BATCH:
        raise ArgumentRefusedError(f"s_message_ids: at most {TMC_BATCH} ids a call")
    return ids


def _consumed(messages: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {"messages": {"tmc_message": messages}} if messages else {}


# TMC over HTTP (platforms.md 1.4); a consume asks for 10 to 200 (100 unless it says).
CHANNEL = ChannelMethods(
    permit="taobao.tmc.user.permit",
    cancel="taobao.tmc.user.cancel",
    consume="taobao.tmc.messages.consume",
    confirm="taobao.tmc.messages.confirm",
    quantity=_quantity,
    confirmed=_confirmed,
    batch=_consumed,
    done={"is_success": True},
)
# What a thin TMC content keeps (platforms.md 1.4): trades lose their items,
# refunds their amounts; courier scans come whole.
THIN_TRADE = ("tid", "status", "payment", "modified")
THIN_REFUND = ("refund_id", "tid", "oid", "status", "modified")


def thin_content(topic: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    if topic.startswith("taobao_trade_"):
        oid = payload["items"][0]["oid"] if payload.get("items") else ""
        return {
            **{name: payload[name] for name in THIN_TRADE},
            "oid": oid,
            "buyer_nick": "buyer",
        }
    if topic.startswith("taobao_refund_"):
        return {name: payload[name] for name in THIN_REFUND}
    return dict(payload)


def _envelope(message: Message, sent_at: datetime, content: Mapping[str, Any]) -> dict[str, Any]:
    """A message as a push's body and a TMC message both carry it (1.1, 1.4)."""
    return {
        "id": message.message_id,
        "topic": message.topic,
        "user_id": message.shop_ref,
        "user_nick": f"shop-{message.shop_ref}",
        "pub_time": format_wire_time(sent_at),
        "content": json.dumps(content, ensure_ascii=False),
    }


class SimulatedTaobao(FormApi):
    name = "taobao"
    demo_credentials = AppCredentials("demo-app-key", "demo-secret")
    demo_seller = DEMO_USER_ID
    demo_shop_name = "Demo Taobao-style shop"
    approve_seller = "2200000002"
    authorize_path = "/authorize"
    token_routes = (("POST", "/token"),)
    token_client_fields = ("client_id", "client_secret")
    api_path = "/router/rest"
    api_sign_method = "hmac-sha256"
    session_field = "session"
    methods = METHODS
    queries = QUERIES
    token_methods = NO_TOKEN_METHODS
    channel = CHANNEL

    def identity(self, seller: str, nick: str) -> dict[str, str]:
        return {"taobao_user_id": seller, "taobao_user_nick": nick}

    def business(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        return form

    def success(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return {method.removeprefix("taobao.").replace(".", "_") + "_response": body}

    def held_record(self, message: Message) -> HeldRecord | None:
        for prefix, (listing, id_field) in LISTED.items():
            if message.topic.startswith(prefix):
                modified = parse_wire_time(message.payload["modified"])
                entity_id = str(message.payload[id_field])
                return HeldRecord(
                    message.shop_ref, listing, entity_id, modified, modified, message.payload
                )
        return None

    def refusal(self, refusal: Refusal, detail: str) -> dict[str, Any]:
        code, text, sub_code, sub_text = REFUSALS[refusal]
        return {
            "error_response": {
                "code": int(code),
                "msg": text.format(detail),
                "sub_code": sub_code,
                "sub_msg": sub_text.format(detail),
            }
        }

    def order_story(self, order_id: str, start: datetime) -> list[Message]:
        return taobao_order(order_id, start)

    def channel_message(
        self, message: Message, app_key: str, sent_at: datetime, thin: bool
    ) -> dict[str, Any]:
        content = thin_content(message.topic, message.payload) if thin else message.payload
        return {**_envelope(message, sent_at, content), "pub_app_key": app_key}

    def signed_push(
        self,
        message: Message,
        credentials: AppCredentials,
        sent_at: datetime,
        sign_method: str = "hmac-sha256",
    ) -> SignedWebhook:
        """A TOP push: the message as a JSON body, the signature in the query string;
        a thin message's content as the platform's channel would hand it out."""
        content = thin_content(message.topic, message.payload) if message.thin else message.payload
        body = json.dumps(_envelope(message, sent_at, content), ensure_ascii=False).encode()
        query = {
            "app_key": credentials.app_key,
            "timestamp": format_wire_time(sent_at),
            "sign_method": sign_method,
            "v": "2.0",
        }
        query["sign"] = SIGNERS[sign_method](credentials.app_secret, joined_params(query) + body)
        return SignedWebhook(
            platform=self.name,
            message_id=message.message_id,
            path=f"/webhooks/{self.name}?{urlencode(query)}",
            headers={"Content-Type": "application/json; charset=utf-8"},
            body=body,
        )


def taobao_order(
    tid: str,
    start: datetime,
    user_id: str = DEMO_USER_ID,
    category: str = "apparel",
    quality_issue: bool = False,
    return_requested_after: float = 72,
) -> list[Message]:
    """Paid, shipped, picked up, signed (48h after payment), confirmed, then a
    return requested `return_requested_after` hours after payment, and refunded."""
    requested = return_requested_after
    item = {
        "oid": f"{tid}01",
        "title": "Cotton T-shirt",
        "num": 2,
        "price": "99.50",
        "category": category,
        "no_reason_return": True,
    }
    trade = {
        "tid": tid,
        "payment": "199.00",
        "post_fee": "0.00",
        "free_shipping": True,
        "receiver_state": "浙江省",
        "items": [item],
    }
    shipped = {"out_sid": f"SF{tid}", "company_code": "SF"}
    refund_id = f"R{tid}"
    refund = {
        "refund_id": refund_id,
        "tid": tid,
        "oid": item["oid"],
        "refund_fee": "199.00",
        "refund_phase": "aftersale",
        "has_good_return": True,
        "reason": "quality problem" if quality_issue else "no longer wanted",
        "quality_issue": quality_issue,
    }
    trade_steps: list[tuple[str, float, str, dict[str, Any]]] = [
        ("taobao_trade_TradeCreate", 0, "WAIT_BUYER_PAY", {}),
        (
            "taobao_trade_TradeBuyerPay",
            0.1,
            "WAIT_SELLER_SEND_GOODS",
            {"pay_time": wire_time_after(start, 0.1)},
        ),
        (
            "taobao_trade_TradeSellerShip",
            20,
            "WAIT_BUYER_CONFIRM_GOODS",
            {
                "pay_time": wire_time_after(start, 0.1),
                "consign_time": wire_time_after(start, 20),
                **shipped,
            },
        ),
        (
            "taobao_trade_TradeSuccess",
            60,
            "TRADE_FINISHED",
            {
                "pay_time": wire_time_after(start, 0.1),
                "consign_time": wire_time_after(start, 20),
                **shipped,
            },
        ),
    ]
    scans = [
        ("CONSIGN", 20, "揽件中"),
        ("GOT", 22, "已揽收"),
        ("TRANSPORT", 30, "运输中"),
        ("SIGNED", 48, "已签收"),
    ]
    refund_steps = [
        ("taobao_refund_RefundCreated", requested, "WAIT_SELLER_AGREE", "BUYER_RECEIVED", {}),
        (
            "taobao_refund_RefundSellerAgreeAgreement",
            requested + 2,
            "WAIT_BUYER_RETURN_GOODS",
            "BUYER_RECEIVED",
            {},
        ),
        (
            "taobao_refund_RefundBuyerReturnGoods",
            requested + 24,
            "WAIT_SELLER_CONFIRM_GOODS",
            "BUYER_RETURNED_GOODS",
            {"return_out_sid": f"YT{tid}"},
        ),
        (
            "taobao_refund_RefundSuccess",
            requested + 48,
            "SUCCESS",
            "BUYER_RETURNED_GOODS",
            {"return_out_sid": f"YT{tid}"},
        ),
    ]
    messages = [
        Message(
            "taobao",
            f"tb-{tid}-trade-{step}",
            topic,
            {**trade, "status": status, "modified": wire_time_after(start, hours), **extra},
            user_id,
        )
        for step, (topic, hours, status, extra) in enumerate(trade_steps)
    ]
    messages += [
        Message(
            "taobao",
            f"tb-{tid}-scan-{step}",
            "taobao_logistics_LogisticsTrace",
            {
                "tid": tid,
                **shipped,
                "action": action,
                "action_time": wire_time_after(start, hours),
                "desc": desc,
            },
            user_id,
        )
        for step, (action, hours, desc) in enumerate(scans)
    ]
    messages += [
        Message(
            "taobao",
            f"tb-{tid}-refund-{step}",
            topic,
            {
                **refund,
                "status": status,
                "good_status": goods,
                "modified": wire_time_after(start, hours),
                **extra,
            },
            user_id,
        )
        for step, (topic, hours, status, goods, extra) in enumerate(refund_steps)
    ]
    return messages


PLATFORM = SimulatedTaobao()
