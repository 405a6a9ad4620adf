"""The state rules: arrival order and repeats never change the outcome."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.model import ShipmentStatus
from chalicelib.domain.state import ShopMismatchError, apply
from chalicelib.domain.views import case_view, order_view
from simulator.scenarios import jd_order, taobao_order
from tests.support import NOW, fold, parsed

START = NOW - timedelta(days=6)
MESSAGES = taobao_order("6000001", START) + jd_order("8000001", START)
INBOUNDS = [parsed(message) for message in MESSAGES]


IN_ORDER = fold(INBOUNDS)


def test_the_in_order_run_ends_where_the_lifecycle_does():
    order = order_view(IN_ORDER[("taobao", "order", "6000001")], version=1)
    assert order["status"] == "completed"
    assert order["shipment"]["status"] == ShipmentStatus.DELIVERED
    assert order["shipment"]["picked_up_at"] == (START + timedelta(hours=22)).isoformat()
    case = case_view(IN_ORDER[("taobao", "case", "R6000001")], version=1)
    assert (case["status"], case["kind"], case["amount_fen"]) == (
        "refunded",
        "return_refund",
        19900,
    )
    jd = order_view(IN_ORDER[("jd", "order", "8000001")], version=1)
    assert (jd["status"], jd["shop_id"], jd["shipped_at"]) == (
        "completed",
        "jd:10000001",
        (START + timedelta(hours=18)).isoformat(),
    )


@given(st.sampled_from(INBOUNDS))
def test_applying_a_message_twice_changes_nothing_the_second_time(inbound):
    once = apply(inbound, None)
    assert once is not None
    assert apply(inbound, once) is None


def test_an_older_snapshot_is_stale():
    paid, shipped = parsed(MESSAGES[1]), parsed(MESSAGES[2])
    newest = apply(shipped, None)
    assert apply(paid, newest) is None


def test_a_message_naming_another_shop_is_refused():
    held = apply(INBOUNDS[0], None)
    intruder = replace(INBOUNDS[1], shop_id="taobao:999")
    with pytest.raises(ShopMismatchError, match="belongs to taobao:2200000001"):
        apply(intruder, held)


def test_a_trace_before_its_order_is_kept_but_the_order_is_not_shown():
    trace = next(i for i in INBOUNDS if i.topic == "jd_pop_logistics_trace")
    orphan = apply(trace, None)
    assert orphan.shop_id is None and orphan.scans is not None
    with pytest.raises(ValueError, match="trade message"):
        order_view(orphan, version=1)
