"""Realistic message sequences, as the platforms would push them for one order.

Each message carries its own `modified` time, strictly increasing per entity,
so any arrival order can be checked against the in-order result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.wire import format_wire_time
from simulator.platforms import registry
from simulator.platforms.jd import PLATFORM as JD
from simulator.platforms.taobao import PLATFORM as TAOBAO
from simulator.webhooks import SignedWebhook

DEMO_TAOBAO_USER_ID = TAOBAO.demo_seller
DEMO_JD_VENDER_ID = JD.demo_seller
# One demo shop and one app per simulated platform.
DEMO_SHOPS = {
    f"{name}:{platform.demo_seller}": platform.demo_shop_name
    for name, platform in registry().items()
}
DEMO_CREDENTIALS = {name: platform.demo_credentials for name, platform in registry().items()}


@dataclass(frozen=True)
class Message:
    """One platform push before signing."""

    platform: str
    message_id: str
    topic: str
    payload: dict[str, Any]
    shop_ref: str = ""  # Taobao-style pushes name the seller outside the content

    def signed(self, credentials: AppCredentials, sent_at: datetime) -> SignedWebhook:
        return registry()[self.platform].signed_push(self, credentials, sent_at)


def _at(start: datetime, hours: float) -> str:
    return format_wire_time(start + timedelta(hours=hours))


def taobao_order(
    tid: str,
    start: datetime,
    user_id: str = DEMO_TAOBAO_USER_ID,
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
            {"pay_time": _at(start, 0.1)},
        ),
        (
            "taobao_trade_TradeSellerShip",
            20,
            "WAIT_BUYER_CONFIRM_GOODS",
            {"pay_time": _at(start, 0.1), "consign_time": _at(start, 20), **shipped},
        ),
        (
            "taobao_trade_TradeSuccess",
            60,
            "TRADE_FINISHED",
            {"pay_time": _at(start, 0.1), "consign_time": _at(start, 20), **shipped},
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
            {**trade, "status": status, "modified": _at(start, hours), **extra},
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
                "action_time": _at(start, hours),
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
                "modified": _at(start, hours),
                **extra,
            },
            user_id,
        )
        for step, (topic, hours, status, goods, extra) in enumerate(refund_steps)
    ]
    return messages


def jd_order(order_id: str, start: datetime, vender_id: str = DEMO_JD_VENDER_ID) -> list[Message]:
    """Paid, shipped, scanned to delivery, finished, then a return service request."""
    order = {
        "orderId": order_id,
        "venderId": vender_id,
        "orderTotalPrice": "59.90",
        "freightPrice": "0.00",
        "freeShipping": True,
        "province": "北京",
        "paymentConfirmTime": _at(start, 0.1),
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
        "applyTime": _at(start, 80),
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
            {**order, "orderState": state, "modified": _at(start, hours), **extra},
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
                "opeTime": _at(start, hours),
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
            {**afs, "afsServiceStatus": status, "modified": _at(start, hours)},
        )
        for step, (topic, hours, status) in enumerate(afs_steps)
    ]
    return messages


@dataclass(frozen=True)
class Scenario:
    description: str
    shop_id: str
    default_order_id: str
    # (order id, now) -> the messages, timed relative to now.
    build: Callable[[str, datetime], list[Message]]


DAY = timedelta(days=1)
TAOBAO_SHOP = f"taobao:{DEMO_TAOBAO_USER_ID}"
JD_SHOP = f"jd:{DEMO_JD_VENDER_ID}"
# taobao_order's messages: trade 0-3, courier scans 4-7, the return 8-11.
UP_TO_RETURN_REQUEST = 9
UP_TO_GOODS_RETURNED = 11

SCENARIOS = {
    "taobao-order": Scenario(
        "a Taobao-style order from payment to a refunded return",
        TAOBAO_SHOP,
        "3010001",
        lambda order_id, now: taobao_order(order_id, now - 5 * DAY),
    ),
    "jd-order": Scenario(
        "a JD-style order from payment to a return request",
        JD_SHOP,
        "9001",
        lambda order_id, now: jd_order(order_id, now - 5 * DAY),
    ),
    "awaiting-refund": Scenario(
        "a return the buyer has sent back: the seller may agree the refund",
        TAOBAO_SHOP,
        "3060001",
        lambda order_id, now: taobao_order(order_id, now - 5 * DAY)[:UP_TO_GOODS_RETURNED],
    ),
    "late-shipment": Scenario(
        "an order paid three days ago that never ships (ship-by breached)",
        TAOBAO_SHOP,
        "3020001",
        lambda order_id, now: taobao_order(order_id, now - 3 * DAY)[:2],
    ),
    "late-return": Scenario(
        "a no-reason return asked for ten days after signing (ineligible)",
        TAOBAO_SHOP,
        "3030001",
        lambda order_id, now: taobao_order(
            order_id, now - 13 * DAY, return_requested_after=48 + 240
        )[:UP_TO_RETURN_REQUEST],
    ),
    "fresh-return": Scenario(
        "a no-reason return of fresh food (excluded by law)",
        TAOBAO_SHOP,
        "3040001",
        lambda order_id, now: taobao_order(order_id, now - 5 * DAY, category="fresh")[
            :UP_TO_RETURN_REQUEST
        ],
    ),
    "quality-return": Scenario(
        "a late return of fresh food with a quality problem (never refused)",
        TAOBAO_SHOP,
        "3050001",
        lambda order_id, now: taobao_order(
            order_id,
            now - 13 * DAY,
            category="fresh",
            quality_issue=True,
            return_requested_after=48 + 240,
        )[:UP_TO_RETURN_REQUEST],
    ),
}
