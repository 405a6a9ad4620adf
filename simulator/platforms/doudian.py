"""The simulated Doudian-style platform: OAuth whose code is exchanged with the
API method `token.create`, the API (method in the path and the query, business
parameters as a JSON body, signed hmac-sha256 in lower-case hex, numeric codes
with `sub_code`s), its pushes of message arrays, and an order's story as it
pushes it (thin trade messages; the order itself is what `order.orderDetail`
and `order.searchList` answer)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Request

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.doudian import (
    ALREADY_DONE_SUB_CODE,
    CASE_LISTING,
    DETAIL_METHOD,
    INVALID_TOKEN_CODE,
    OPERATE_METHOD,
    ORDER_LISTING,
    RATE_LIMITED_CODE,
    RATE_LIMITED_SUB_CODE,
    SHIP_METHOD,
    TOKEN_CREATE,
    TOKEN_REFRESH,
    TRADE_TAGS,
    api_sign,
    method_path,
    push_sign,
)
from chalicelib.platforms.signing import signatures_match
from chalicelib.platforms.wire import format_wire_time
from simulator.platforms.base import (
    ApiCall,
    ApiMethod,
    ArgumentRefusedError,
    HeldRecord,
    Query,
    Refusal,
    listed_between,
    page_size,
)
from simulator.webhooks import Message, SignedWebhook

DEMO_SHOP_ID = "30000001"
# Refusal -> the platform's code, msg, sub_code, sub_msg ({} is the detail).
REFUSALS = {
    Refusal.UNKNOWN_METHOD: (40004, "非法的方法", "isv.method-not-existed", "{}"),
    Refusal.BAD_SIGNATURE: (40003, "非法的参数", "isv.signature-invalid", "签名校验失败"),
    Refusal.INVALID_SESSION: (
        INVALID_TOKEN_CODE,
        "非法的参数",
        "isv.access-token-expired",
        "access_token已过期",
    ),
    Refusal.RATE_LIMITED: (RATE_LIMITED_CODE, "请求过于频繁", RATE_LIMITED_SUB_CODE, "{}"),
    Refusal.MISSING_ARGUMENT: (40002, "缺少必选参数", "isv.parameter-missing", "{}"),
    Refusal.INVALID_ARGUMENT: (40003, "非法的参数", "isv.parameter-invalid", "{}"),
    Refusal.ALREADY_DONE: (50002, "业务处理失败", ALREADY_DONE_SUB_CODE, "当前状态不允许此操作"),
}
OPERATE_TYPES = (201, 202, 111, 112, 121)
# aftersale_status (chalicelib.platforms.doudian.LISTED_STATUS) as each tag leaves it.
STATUS_AFTER_TAG = {
    "200": 6,
    "201": 12,
    "202": 7,
    "203": 11,
    "204": 27,
    "205": 27,
    "206": 12,
    "207": 28,
}


def _operated(business: Mapping[str, Any]) -> str:
    """An after-sale step is taken once per after-sale and type."""
    items = business["items"]
    first = items[0] if isinstance(items, list) and items else {}
    return f"{first.get('aftersale_id') if isinstance(first, dict) else ''}:{business['type']}"


def _invalid_operation(business: Mapping[str, Any], seller: str) -> str | None:
    if business["type"] not in OPERATE_TYPES:
        return f"type must be one of {', '.join(map(str, OPERATE_TYPES))}"
    items = business["items"]
    if not isinstance(items, list) or not items:
        return "items must list the after-sales"
    if not all(isinstance(item, dict) and item.get("aftersale_id") for item in items):
        return "items[].aftersale_id is required"
    return None


METHODS = {
    SHIP_METHOD: ApiMethod(("order_id", "company_code", "logistics_code"), {}),
    OPERATE_METHOD: ApiMethod(
        ("type", "items"),
        {"items": [{"status_code": 0, "status_msg": "success"}]},
        _invalid_operation,
        _operated,
    ),
}


def _unix_to_wire(business: Mapping[str, Any], name: str) -> str:
    value = business[name]
    if not isinstance(value, int):
        raise ArgumentRefusedError(f"{name} must be unix seconds")
    return format_wire_time(datetime.fromtimestamp(value, UTC))


def _listed(
    business: Mapping[str, Any], held: Sequence[HeldRecord], start: str, end: str
) -> tuple[list[Mapping[str, Any]], int, int]:
    """A page (from 0) of records by update time: the records, their total, the size."""
    page = business["page"]
    if not isinstance(page, int) or page < 0:
        raise ArgumentRefusedError("page is counted from 0")
    size = page_size(business, "size", 100)
    records, total = listed_between(
        held, _unix_to_wire(business, start), _unix_to_wire(business, end), page + 1, size
    )
    return records, total, size


def _order_search(business: Mapping[str, Any], held: Sequence[HeldRecord]) -> dict[str, Any]:
    if business.get("order_by", "update_time") != "update_time":
        raise ArgumentRefusedError("order_by: only update_time is served")
    records, total, size = _listed(business, held, "update_time_start", "update_time_end")
    return {"shop_order_list": records, "total": total, "page": business["page"], "size": size}


def _after_sales(business: Mapping[str, Any], held: Sequence[HeldRecord]) -> dict[str, Any]:
    records, total, size = _listed(business, held, "update_start_time", "update_end_time")
    more = (business["page"] + 1) * size < total
    return {"items": [{"aftersale_info": record} for record in records], "has_more": more}


def _order_detail(business: Mapping[str, Any], held: Sequence[HeldRecord]) -> dict[str, Any]:
    wanted = str(business["shop_order_id"])
    for record in held:
        if record.entity_id == wanted:
            return {"shop_order_detail": record.record}
    raise ArgumentRefusedError(f"shop_order_id: no order {wanted}")


QUERIES = {
    ORDER_LISTING: Query(
        ORDER_LISTING,
        ("update_time_start", "update_time_end", "page", "size"),
        _order_search,
    ),
    CASE_LISTING: Query(
        CASE_LISTING, ("update_start_time", "update_end_time", "page", "size"), _after_sales
    ),
    DETAIL_METHOD: Query(ORDER_LISTING, ("shop_order_id",), _order_detail),
}


class SimulatedDoudian:
    name = "doudian"
    demo_credentials = AppCredentials("demo-dd-key", "demo-dd-secret")
    demo_seller = DEMO_SHOP_ID
    demo_shop_name = "Demo Doudian-style shop"
    approve_seller = "30000002"
    authorize_path = "/authorize"
    # No token endpoints: the code is exchanged with the API's token methods.
    token_routes = ()
    token_client_fields = ("app_key", "app_secret")
    api_path = ""
    methods = METHODS
    queries = QUERIES
    token_methods = {TOKEN_CREATE: "authorization_code", TOKEN_REFRESH: "refresh_token"}  # noqa: RUF012 - read only
    channel = None  # every message is pushed

    def identity(self, seller: str, nick: str) -> dict[str, str]:
        return {"shop_id": seller, "shop_name": nick}

    def read_call(self, request: Request, credentials: AppCredentials) -> ApiCall:
        """The method in the query and the path, the business parameters as the
        JSON body, the sign over both (platforms.md 2.4)."""
        query = dict(request.args)
        method = query.get("method", "")
        body = request.get_data(as_text=True)
        try:
            business = json.loads(body)
        except ValueError:
            business = {}
        expected = api_sign(credentials, method, body, query.get("timestamp", ""))
        return ApiCall(
            # Called at another method's path: not a method the platform knows.
            method=method if request.path.endswith(f"/{method_path(method)}") else "",
            params=query,
            session=query.get("access_token", ""),
            business=business if isinstance(business, dict) else {},
            signature_ok=query.get("app_key") == credentials.app_key
            and query.get("v") == "2"
            and signatures_match(expected, query.get("sign", "")),
        )

    def success(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"code": 10000, "msg": "success", "data": body, "log_id": "sim"}

    def refusal(self, refusal: Refusal, detail: str) -> dict[str, Any]:
        code, text, sub_code, sub_text = REFUSALS[refusal]
        return {
            "code": code,
            "msg": text,
            "sub_code": sub_code,
            "sub_msg": sub_text.format(detail),
            "log_id": "sim",
        }

    def held_record(self, message: Message) -> HeldRecord | None:
        payload = message.payload
        if message.topic in TRADE_TAGS:
            detail = payload["detail"]
            modified = datetime.fromtimestamp(detail["update_time"], UTC)
            return HeldRecord(
                str(detail["shop_id"]),
                ORDER_LISTING,
                str(detail["order_id"]),
                modified,
                modified,
                detail,
            )
        if message.topic in STATUS_AFTER_TAG:
            modified = datetime.fromtimestamp(payload["update_time"], UTC)
            return HeldRecord(
                str(payload["shop_id"]),
                CASE_LISTING,
                str(payload["aftersale_id"]),
                modified,
                modified,
                payload,
            )
        return None

    def order_story(self, order_id: str, start: datetime) -> list[Message]:
        return doudian_order(order_id, start)

    def signed_push(
        self, message: Message, credentials: AppCredentials, sent_at: datetime
    ) -> SignedWebhook:
        return signed_array([message], credentials)

    def signed_batch(
        self, messages: Sequence[Message], credentials: AppCredentials, sent_at: datetime
    ) -> list[SignedWebhook]:
        return [signed_array(messages, credentials)]


def pushed_data(message: Message) -> dict[str, Any]:
    """What a message's `data` carries: a trade message is thin, without its detail."""
    return {name: value for name, value in message.payload.items() if name != "detail"}


def signed_array(messages: Iterable[Message], credentials: AppCredentials) -> SignedWebhook:
    """One push of several messages, as the platform batches them: a JSON array
    signed with `event-sign` (platforms.md 1.3)."""
    batch = list(messages)
    body = json.dumps(
        [
            {
                "tag": message.topic,
                "msg_id": message.message_id,
                "data": json.dumps(pushed_data(message), ensure_ascii=False),
            }
            for message in batch
        ],
        ensure_ascii=False,
    ).encode()
    return SignedWebhook(
        platform="doudian",
        message_id=",".join(message.message_id for message in batch),
        path="/webhooks/doudian",
        headers={
            "Content-Type": "application/json",
            "app-id": credentials.app_key,
            "event-sign": push_sign(credentials.app_key, body, credentials.app_secret),
        },
        body=body,
    )


def _unix(start: datetime, hours: float) -> int:
    return int((start + timedelta(hours=hours)).timestamp())


def doudian_order(order_id: str, start: datetime, shop_id: str = DEMO_SHOP_ID) -> list[Message]:
    """Paid, shipped, scanned to delivery, completed, then a return and its goods
    sent back. Trade messages carry the order's detail beside what they push."""
    sku_id = f"{order_id}1"
    tracking = {"tracking_no": f"SF{order_id}", "company": "shunfeng"}
    detail = {
        "order_id": order_id,
        "shop_id": shop_id,
        "order_amount": 5990,
        "post_amount": 0,
        "free_shipping": True,
        "create_time": _unix(start, 0),
        "pay_time": _unix(start, 0.1),
        "sku_order_list": [
            {
                "sku_order_id": sku_id,
                "product_name": "蓝牙耳机",
                "item_num": 1,
                "origin_amount": 5990,
                "category": "electronics",
                "seven_day_return": True,
            }
        ],
    }
    shipped = {
        "logistics_msg": {"express_company_id": "shunfeng", "logistics_code": f"SF{order_id}"}
    }
    trade_steps: list[tuple[str, float, int, dict[str, Any]]] = [
        ("101", 0.1, 2, {}),
        ("102", 18, 3, shipped),
        ("103", 70, 5, {}),
    ]
    messages = [
        Message(
            "doudian",
            f"dd-{order_id}-trade-{step}",
            tag,
            {
                "p_id": order_id,
                "s_ids": [sku_id],
                "shop_id": shop_id,
                "order_status": status,
                "update_time": _unix(start, hours),
                **extra,
                "detail": {
                    **detail,
                    "order_status": status,
                    "update_time": _unix(start, hours),
                    "logistics_info": [tracking] if status != 2 else [],
                },
            },
        )
        for step, (tag, hours, status, extra) in enumerate(trade_steps)
    ]
    scans = [("GOT", 19), ("TRANSPORT", 26), ("SIGNED", 44)]
    messages += [
        Message(
            "doudian",
            f"dd-{order_id}-scan-{step}",
            "104",
            {
                "p_id": order_id,
                "shop_id": shop_id,
                "logistics_code": f"SF{order_id}",
                "express_company_id": "shunfeng",
                "action": action,
                "action_time": _unix(start, hours),
                "update_time": _unix(start, hours),
            },
        )
        for step, (action, hours) in enumerate(scans)
    ]
    after_sale = {
        "aftersale_id": f"{order_id}7",
        "p_id": order_id,
        "s_id": sku_id,
        "shop_id": shop_id,
        "aftersale_type": 0,
        "refund_amount": 5990,
        "reason_code": "7",
        "quality_issue": False,
    }
    returned = {"logistics": {"company": "shunfeng", "tracking_no": f"SFR{order_id}"}}
    case_steps: list[tuple[str, float, dict[str, Any]]] = [
        ("200", 80, {}),
        ("202", 84, {}),
        ("203", 100, returned),
    ]
    messages += [
        Message(
            "doudian",
            f"dd-{order_id}-aftersale-{step}",
            tag,
            {
                **after_sale,
                "aftersale_status": STATUS_AFTER_TAG[tag],
                "update_time": _unix(start, hours),
                **extra,
            },
        )
        for step, (tag, hours, extra) in enumerate(case_steps)
    ]
    return messages


PLATFORM = SimulatedDoudian()
