"""The simulated JD-style platform: JOS OAuth (GET token endpoints), the JOS
API (business fields as `360buy_param_json`, signed md5, `error_response` with
text codes, success keys spelt `responce`), its form pushes and an order's
story as it pushes it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.jd import (
    ALREADY_DONE_CODE,
    INVALID_TOKEN_CODE,
    ORDER_LISTING,
    PAYLOAD_FIELD,
    REFUND_LISTING,
    REREAD_METHOD,
)
from chalicelib.platforms.signing import joined_params, md5_sign, without_blank
from chalicelib.platforms.wire import format_wire_time, parse_wire_time
from simulator.platforms.base import (
    NO_TOKEN_METHODS,
    ApiMethod,
    ArgumentRefusedError,
    FormApi,
    HeldRecord,
    Query,
    Refusal,
    listed_between,
    page_size,
    wire_time_after,
)
from simulator.webhooks import Message, SignedWebhook

DEMO_VENDER_ID = "10000001"
# Refusal -> JOS's code and text ({} is the detail).
REFUSALS = {
    Refusal.UNKNOWN_METHOD: ("3", "Invalid method {}"),
    Refusal.BAD_SIGNATURE: ("4", "Invalid signature"),
    Refusal.INVALID_SESSION: (INVALID_TOKEN_CODE, "Invalid access_token"),
    # Busy, not "19": that code now says the access_token is invalid.
    Refusal.RATE_LIMITED: ("5001", "App Call Limited"),
    Refusal.MISSING_ARGUMENT: ("6", "Missing {}"),
    Refusal.INVALID_ARGUMENT: ("7", "Invalid {}"),
    Refusal.ALREADY_DONE: (ALREADY_DONE_CODE, "the status does not allow this operation"),
}


def _invalid_reply(business: Mapping[str, Any], seller: str) -> str | None:
    if business["status"] not in (1, 2) or business["outWareStatus"] not in (1, 2):
        return "status and outWareStatus must each be 1 or 2"
    if (business["status"] == 2) != ("rejectType" in business):
        return "rejectType is given when rejecting, and only then"
    return None


def _invalid_audit(business: Mapping[str, Any], seller: str) -> str | None:
    return None if isinstance(business["approve"], bool) else "approve must be true or false"


def _invalid_receipt(business: Mapping[str, Any], seller: str) -> str | None:
    return None if str(business["buId"]) == seller else "buId is not the session's venderId"


# Method -> its required `360buy_param_json` fields, their checks and its answer
# (platforms.md 2.2).
METHODS = {
    "jingdong.pop.afs.soa.refundapply.replyRefund": ApiMethod(
        ("id", "status", "checkUserName", "remark", "outWareStatus"),
        {"replyResult": {"success": True}},
        _invalid_reply,
    ),
    "jingdong.pop.order.shipment": ApiMethod(
        ("orderId", "logiCoprId", "logiNo"), {"sopjosshipment_result": {"success": True}}
    ),
    "jingdong.pop.afs.audit": ApiMethod(
        ("afsServiceId", "approve", "remark"), {"code": "0"}, _invalid_audit
    ),
    "jingdong.asc.receive.register": ApiMethod(
        ("serviceId", "buId", "operatePin", "operateNick", "orderId"),
        {"result": {"success": True}},
        _invalid_receipt,
    ),
}


def _order_search(business: Mapping[str, Any], held: Sequence[HeldRecord]) -> dict[str, Any]:
    if business["dateType"] != 1:
        raise ArgumentRefusedError("dateType: only 1 (by modified) is served")
    records, total = listed_between(
        held,
        business["start_date"],
        business["end_date"],
        int(business["page"]),
        page_size(business, "page_size", 100),
    )
    return {"searchorderinfo_result": {"orderInfoList": records, "orderTotal": total}}


def _refund_applies(business: Mapping[str, Any], held: Sequence[HeldRecord]) -> dict[str, Any]:
    """Refund applies by their apply time (not by when they last changed)."""
    records, total = listed_between(
        held,
        business["applyTimeStart"],
        business["applyTimeEnd"],
        int(business["pageIndex"]),
        page_size(business, "pageSize", 50),
    )
    return {"queryResult": {"result": records, "totalCount": total}}


def _refund_apply(business: Mapping[str, Any], held: Sequence[HeldRecord]) -> dict[str, Any]:
    records = [record.record for record in held if record.entity_id == str(business["id"])]
    return {"queryResult": {"result": records, "totalCount": len(records)}}


# Reconciliation queries (platforms.md 2.3).
QUERIES = {
    ORDER_LISTING: Query(
        ORDER_LISTING,
        ("start_date", "end_date", "page", "page_size", "dateType"),
        _order_search,
    ),
    REFUND_LISTING: Query(
        REFUND_LISTING,
        ("applyTimeStart", "applyTimeEnd", "pageIndex", "pageSize"),
        _refund_applies,
    ),
    REREAD_METHOD: Query(REFUND_LISTING, ("id",), _refund_apply),
}


class SimulatedJd(FormApi):
    name = "jd"
    demo_credentials = AppCredentials("demo-jd-key", "demo-jd-secret")
    demo_seller = DEMO_VENDER_ID
    demo_shop_name = "Demo JD-style shop"
    approve_seller = "10000002"
    authorize_path = "/oauth2/to_login"
    token_routes = (("GET", "/oauth2/access_token"), ("GET", "/oauth2/refresh_token"))
    token_client_fields = ("app_key", "app_secret")
    api_path = "/routerjson"
    api_sign_method = "md5"
    session_field = "access_token"
    methods = METHODS
    queries = QUERIES
    token_methods = NO_TOKEN_METHODS
    channel = None  # every message is pushed

    def identity(self, seller: str, nick: str) -> dict[str, str]:
        return {"venderId": seller, "uid": nick}

    def business(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        try:
            business = json.loads(form.get(PAYLOAD_FIELD, "{}"))
        except ValueError:
            return {}
        return business if isinstance(business, dict) else {}

    def success(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return {method.replace(".", "_") + "_responce": body}

    def held_record(self, message: Message) -> HeldRecord | None:
        payload = message.payload
        if message.topic.startswith("jd_pop_order_"):
            modified = parse_wire_time(payload["modified"])
            return HeldRecord(
                str(payload["venderId"]),
                ORDER_LISTING,
                str(payload["orderId"]),
                modified,
                modified,
                payload,
            )
        if message.topic.startswith("jd_pop_refund_"):
            return HeldRecord(
                str(payload["venderId"]),
                REFUND_LISTING,
                str(payload["id"]),
                parse_wire_time(payload["modified"]),
                parse_wire_time(payload["applyTime"]),
                payload,
            )
        return None

    def refusal(self, refusal: Refusal, detail: str) -> dict[str, Any]:
        code, text = REFUSALS[refusal]
        wording = text.format(detail)
        return {"error_response": {"code": code, "zh_desc": wording, "en_desc": wording}}

    def order_story(self, order_id: str, start: datetime) -> list[Message]:
        return jd_order(order_id, start)

    def signed_push(
        self,
        message: Message,
        credentials: AppCredentials,
        sent_at: datetime,
    ) -> SignedWebhook:
        """A JOS push: one signed form (the payload names the shop)."""
        form = {
            "app_key": credentials.app_key,
            "timestamp": format_wire_time(sent_at),
            "v": "2.0",
            "method": message.topic,
            "msg_id": message.message_id,
            PAYLOAD_FIELD: json.dumps(message.payload, ensure_ascii=False),
        }
        form["sign"] = md5_sign(credentials.app_secret, joined_params(without_blank(form)))
        return SignedWebhook(
            platform=self.name,
            message_id=message.message_id,
            path=f"/webhooks/{self.name}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urlencode(form).encode(),
        )


def jd_order(order_id: str, start: datetime, vender_id: str = DEMO_VENDER_ID) -> list[Message]:
    """Paid, shipped, scanned to delivery, finished, then a return service request."""
    order = {
        "orderId": order_id,
        "venderId": vender_id,
        "orderTotalPrice": "59.90",
        "freightPrice": "0.00",
        "freeShipping": True,
        "province": "北京",
        "paymentConfirmTime": wire_time_after(start, 0.1),
        "items": [
            {
                "skuId": f"{order_id}9",
                "skuName": "蓝牙耳机",
                "itemTotal": 1,
                "jdPrice": "59.90",
                "category": "electronics",
                "noReasonReturn": True,
            }
        ],
    }
    shipped = {"waybill": f"JDV{order_id}", "logisticsId": "JD"}
    order_steps: list[tuple[str, float, str, dict[str, Any]]] = [
        ("jd_pop_order_pay", 0.1, "WAIT_SELLER_STOCK_OUT", {}),
        ("jd_pop_order_out_stock", 18, "WAIT_GOODS_RECEIVE_CONFIRM", shipped),
        ("jd_pop_order_finish", 70, "FINISHED_L", shipped),
    ]
    scans = [
        ("揽收", 19, "已揽收"),
        ("运输", 26, "运输中"),
        ("派送", 40, "派送中"),
        ("签收", 44, "已签收"),
    ]
    afs = {
        "afsServiceId": f"{order_id}7",
        "orderId": order_id,
        "venderId": vender_id,
        "customerExpect": "10",
        "questionTypeCode": "other",
        "applyTime": wire_time_after(start, 80),
    }
    afs_steps = [
        ("jd_pop_afs_apply", 80, "10"),
        ("jd_pop_afs_status", 84, "20"),
        ("jd_pop_afs_status", 100, "40"),
    ]
    messages = [
        Message(
            "jd",
            f"jd-{order_id}-order-{step}",
            topic,
            {**order, "orderState": state, "modified": wire_time_after(start, hours), **extra},
        )
        for step, (topic, hours, state, extra) in enumerate(order_steps)
    ]
    messages += [
        Message(
            "jd",
            f"jd-{order_id}-scan-{step}",
            "jd_pop_logistics_trace",
            {
                "orderId": order_id,
                **shipped,
                "opeTitle": title,
                "opeTime": wire_time_after(start, hours),
                "opeRemark": remark,
            },
        )
        for step, (title, hours, remark) in enumerate(scans)
    ]
    messages += [
        Message(
            "jd",
            f"jd-{order_id}-afs-{step}",
            topic,
            {**afs, "afsServiceStatus": status, "modified": wire_time_after(start, hours)},
        )
        for step, (topic, hours, status) in enumerate(afs_steps)
    ]
    return messages


PLATFORM = SimulatedJd()
