"""The demo shops and apps of the simulated platforms, and the scenarios
`shophook simulate` plays: realistic message sequences built from each
platform's order story (simulator/platforms/).

Each message carries its own `modified` time, strictly increasing per entity,
so any arrival order can be checked against the in-order result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulator.platforms import registry
from simulator.platforms.doudian import DEMO_SHOP_ID as DEMO_DOUDIAN_SHOP_ID
from simulator.platforms.doudian import doudian_order
from simulator.platforms.jd import DEMO_VENDER_ID as DEMO_JD_VENDER_ID
from simulator.platforms.jd import jd_order
from simulator.platforms.taobao import DEMO_USER_ID as DEMO_TAOBAO_USER_ID
from simulator.platforms.taobao import taobao_order
from simulator.webhooks import Message

# One demo shop and one app per simulated platform.
DEMO_SHOPS = {
    f"{name}:{platform.demo_seller}": platform.demo_shop_name
    for name, platform in registry().items()
}
DEMO_CREDENTIALS = {name: platform.demo_credentials for name, platform in registry().items()}


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
DOUDIAN_SHOP = f"doudian:{DEMO_DOUDIAN_SHOP_ID}"
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
    "doudian-order": Scenario(
        "a Doudian-style order from payment to its return sent back (thin trade messages)",
        DOUDIAN_SHOP,
        "4900000000001",
        lambda order_id, now: doudian_order(order_id, now - 5 * DAY),
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
