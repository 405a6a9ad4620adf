"""One message per topic of each platform, with the canonical result it must give."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.platforms.wire import format_wire_time
from simulator.platforms.doudian import STATUS_AFTER_TAG, doudian_order
from simulator.scenarios import Message, jd_order, taobao_order
from tests.support import NOW

START = NOW - timedelta(days=6)
_TAOBAO = {m.topic: m for m in taobao_order("5000001", START)}
_JD = {m.topic: m for m in jd_order("7000001", START)}
_DOUDIAN = {m.topic: m for m in doudian_order("4900000000001", START)}


def _variant(base: Message, topic: str, message_id: str, **changes: object) -> Message:
    return Message(base.platform, message_id, topic, {**base.payload, **changes}, base.shop_ref)


_trade = _TAOBAO["taobao_trade_TradeBuyerPay"]
_refund = _TAOBAO["taobao_refund_RefundCreated"]
_jd_order = _JD["jd_pop_order_pay"]
_afs = _JD["jd_pop_afs_apply"]
_jd_refund = Message(
    "jd",
    "jd-refund-base",
    "jd_pop_refund_apply",
    {
        "id": "880001",
        "orderId": "7000001",
        "venderId": "10000001",
        "applyRefundSum": "59.90",
        "status": "0",
        "reason": "不想要了",
        "applyTime": format_wire_time(START),
        "modified": format_wire_time(START),
    },
)

_aftersale = _DOUDIAN["200"]


def _doudian_case(tag: str, **changes: object) -> Message:
    """An after-sale message of `tag`, its status code as that tag leaves it."""
    status = {"aftersale_status": STATUS_AFTER_TAG[tag]}
    return _variant(_aftersale, tag, f"dd-{tag}", **status, **changes)


def _doudian_trade(tag: str, status: int, **extra: object) -> Message:
    """A trade message of `tag` leaving the order in `status`, and its detail so."""
    paid = _DOUDIAN["101"]
    detail = {**paid.payload["detail"], "order_status": status}
    return _variant(paid, tag, f"dd-{tag}", order_status=status, detail=detail, **extra)


# (message, kind of entity, entity id, field to check, expected value)
EVERY_TOPIC: list[tuple[Message, str, str, str, object]] = [
    (
        _variant(_trade, "taobao_trade_TradeCreate", "c1", status="WAIT_BUYER_PAY"),
        "order",
        "5000001",
        "status",
        "pending_payment",
    ),
    (_trade, "order", "5000001", "status", "paid"),
    (_TAOBAO["taobao_trade_TradeSellerShip"], "order", "5000001", "status", "shipped"),
    (_TAOBAO["taobao_trade_TradeSuccess"], "order", "5000001", "status", "completed"),
    (
        _variant(_trade, "taobao_trade_TradeClose", "c5", status="TRADE_CLOSED_BY_TAOBAO"),
        "order",
        "5000001",
        "status",
        "closed",
    ),
    (_refund, "case", "R5000001", "status", "requested"),
    (
        _TAOBAO["taobao_refund_RefundSellerAgreeAgreement"],
        "case",
        "R5000001",
        "status",
        "awaiting_return",
    ),
    (
        _variant(
            _refund, "taobao_refund_RefundSellerRefuseAgreement", "c8", status="SELLER_REFUSE_BUYER"
        ),
        "case",
        "R5000001",
        "status",
        "refused",
    ),
    (_TAOBAO["taobao_refund_RefundBuyerReturnGoods"], "case", "R5000001", "status", "returned"),
    (_TAOBAO["taobao_refund_RefundSuccess"], "case", "R5000001", "status", "refunded"),
    (
        _variant(_refund, "taobao_refund_RefundClosed", "c11", status="CLOSED"),
        "case",
        "R5000001",
        "status",
        "closed",
    ),
    (
        _TAOBAO["taobao_logistics_LogisticsTrace"],
        "order",
        "5000001",
        "shipment_status",
        "delivered",
    ),
    (_variant(_jd_order, "jd_pop_order_create", "j1"), "order", "7000001", "status", "paid"),
    (_jd_order, "order", "7000001", "status", "paid"),
    (_JD["jd_pop_order_out_stock"], "order", "7000001", "status", "shipped"),
    (_JD["jd_pop_order_finish"], "order", "7000001", "status", "completed"),
    (
        _variant(_jd_order, "jd_pop_order_cancel", "j5", orderState="TRADE_CANCELED"),
        "order",
        "7000001",
        "status",
        "closed",
    ),
    (_jd_refund, "case", "refund-880001", "status", "requested"),
    (
        _variant(_jd_refund, "jd_pop_refund_status", "j7", status=2),
        "case",
        "refund-880001",
        "status",
        "refused",
    ),
    (_afs, "case", "afs-70000017", "kind", "return_refund"),
    (
        _variant(_afs, "jd_pop_afs_status", "j9", afsServiceStatus="60", customerExpect="20"),
        "case",
        "afs-70000017",
        "status",
        "completed",
    ),
    (_JD["jd_pop_logistics_trace"], "order", "7000001", "shipment_status", "delivered"),
    # Thin trade messages: each names the order, which shows once its detail is read.
    (_doudian_trade("100", 1), "order", "4900000000001", "status", "pending_payment"),
    (_DOUDIAN["101"], "order", "4900000000001", "status", "paid"),
    (_DOUDIAN["102"], "order", "4900000000001", "status", "shipped"),
    (_DOUDIAN["103"], "order", "4900000000001", "status", "completed"),
    (
        _doudian_trade("106", 4, cancel_reason="买错了"),
        "order",
        "4900000000001",
        "status",
        "closed",
    ),
    (_DOUDIAN["104"], "order", "4900000000001", "shipment_status", "delivered"),
    (_aftersale, "case", "49000000000017", "status", "requested"),
    (_doudian_case("201"), "case", "49000000000017", "status", "refunded"),
    (_DOUDIAN["202"], "case", "49000000000017", "status", "awaiting_return"),
    (_DOUDIAN["203"], "case", "49000000000017", "status", "returned"),
    (_doudian_case("204"), "case", "49000000000017", "status", "refused"),
    (_doudian_case("205"), "case", "49000000000017", "status", "refused"),
    (_doudian_case("206"), "case", "49000000000017", "status", "refunded"),
    (_doudian_case("207"), "case", "49000000000017", "status", "closed"),
    (
        _variant(_aftersale, "200", "dd-k1", aftersale_type=1),
        "case",
        "49000000000017",
        "kind",
        "refund_only",
    ),
    (
        _variant(_aftersale, "200", "dd-k3", aftersale_type=3),
        "case",
        "49000000000017",
        "kind",
        "exchange",
    ),
]
