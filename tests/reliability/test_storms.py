"""Duplicate storms and reordering. Generated webhook sequences (a prefix of a
lifecycle, shuffled, each message sent up to 10 times) end in the state of the
clean in-order run, and every outbound effect (a platform action, an
integrator delivery) happens exactly once. The same storms delivered through
the Taobao-style message channel (platforms.md 1.4), with faults on its calls
leaving batches unconfirmed (redelivered after their lease), end the same.

Dropped pushes: a lifecycle as it happens, 30% of its pushes never sent, the
reconciliation schedule running after each change, ends as the run that lost
nothing did, with every effect once.

The full stack runs a sample per `make test` and 1,000 under `make soak`; the
pure state machine takes 1,000 sequences in both."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import pytest
import requests
import time_machine
from hypothesis import given
from hypothesis import strategies as st

import app as app_module
from chalicelib.domain.model import LogisticsTrace
from chalicelib.service import shops
from chalicelib.settings import platform_variable
from chalicelib.store.records import DeadlineRecord
from shophook.driver import run_schedules
from simulator.platforms import registry as simulated
from simulator.scenarios import (
    DEMO_CREDENTIALS,
    DEMO_SHOPS,
    Message,
    doudian_order,
    jd_order,
    taobao_order,
)
from simulator.server import hold_records, publish
from tests.reliability.ledger import Ledger
from tests.reliability.report import examples
from tests.reliability.world import (
    FAMILIES,
    LIFECYCLE_START,
    UNSHIPPED_START,
    World,
    final_state,
    refund_before_shipping,
    without,
    world,
)
from tests.support import DOUDIAN_SHOP, JD_SHOP, NOW, TAOBAO_SHOP, drain, fold, parsed, set_env


@pytest.fixture(scope="module")
def the_world():
    with world() as built:
        yield built


EXPECTED: dict[tuple[str, int], tuple[dict, dict]] = {}


def clean_run(the_world: World, family: str, length: int) -> tuple[dict, dict]:
    """The in-order run of the family's first `length` messages, once per module."""
    if (family, length) not in EXPECTED:
        build, paths = FAMILIES[family]
        the_world.reset()
        hold_records(the_world.simulator, build()[:length])
        for message in build()[:length]:
            assert the_world.stack.deliver(message).status == 200
        the_world.settle()
        EXPECTED[family, length] = (final_state(the_world, paths), the_world.platform_effects())
    return EXPECTED[family, length]


# How a storm arrives: pushed, or put on the platform's message channel.
ROUTES = [(family, "push") for family in FAMILIES] + [
    (family, "tmc") for family in FAMILIES if family.startswith("taobao")
]
# Faults on the channel's calls (a consume or a confirm refused): a batch left
# unconfirmed is stored already and comes back after its lease.
CHANNEL_FAULTS = st.lists(st.sampled_from(["none", "server_error", "rate_limit"]), max_size=4)


def through_the_channel(the_world: World, ledger: Ledger, arrival: list[Message], faults) -> None:
    """The storm as the platform's channel hands it out, drained by the schedule
    as time passes; every message ends stored (or quarantined) and confirmed."""
    with time_machine.travel(NOW, tick=False):
        publish(the_world.simulator, arrival, thin=False)
    the_world.fail_next("taobao", faults)
    with pytest.MonkeyPatch.context() as patch:
        set_env(patch, {platform_variable("taobao", "tmc"): "1"})
        reached = the_world.settle()
    assert the_world.unfired_faults() == 0
    with time_machine.travel(reached, tick=False):
        left = requests.get(f"{the_world.simulator}/_sim/channel", timeout=5).json()["taobao"]
    assert (left["waiting"], left["leased"]) == (0, 0)
    for message in arrival:
        ledger.took(message.platform, message.message_id)


@examples(6, 1000)
@given(data=st.data(), route=st.sampled_from(ROUTES))
def test_a_storm_of_duplicates_and_shuffles_ends_as_the_in_order_run_with_effects_once(
    the_world, tally, data, route
):
    family, via = route
    build, paths = FAMILIES[family]
    messages = build()
    length = data.draw(st.integers(1, len(messages)), label="prefix")
    expected_state, expected_effects = clean_run(the_world, family, length)

    arrival = [
        message
        for message in data.draw(st.permutations(messages[:length]), label="order")
        for _ in range(data.draw(st.one_of(st.just(1), st.integers(2, 10)), label="times"))
    ]
    arrival = data.draw(st.permutations(arrival), label="arrival")
    the_world.reset()
    # What the platform holds of the changes (its detail calls answer from it).
    hold_records(the_world.simulator, messages[:length])
    ledger = Ledger(tally)
    if via == "tmc":
        faults = data.draw(CHANNEL_FAULTS, label="faults")
        tally.faults += sum(fault != "none" for fault in faults)
        through_the_channel(the_world, ledger, arrival, faults)
    for batch in batches(data, arrival) if via == "push" else []:
        sent_at = NOW - timedelta(seconds=data.draw(st.integers(0, 590), label="skew"))
        platform = simulated()[batch[0].platform]
        for webhook in platform.signed_batch(batch, DEMO_CREDENTIALS[platform.name], sent_at):
            assert ledger.send(the_world.stack, webhook).status == 200
    the_world.settle()

    effects = the_world.platform_effects()
    receipts = the_world.subscriber.receipts()
    twice = sum(n - 1 for n in effects.values()) + sum(n - 1 for n in receipts.values())
    twice += sum(n - 1 for n in the_world.subscriber.contents().values())
    tally.duplicated_effects += twice
    assert ledger.lost() == []
    assert twice == 0
    assert set(effects) == set(expected_effects)
    # Taken from the channel minutes after it was put there, a message is decided on then.
    when = frozenset({"decided_at"} if via == "tmc" else ())
    assert without(final_state(the_world, paths), when) == without(expected_state, when)


def batches(data: st.DataObject, arrival: list[Message]) -> list[list[Message]]:
    """The arrival as the platform pushes it: runs of up to 5 messages at once (an
    array push of a Doudian-style platform, one push each otherwise)."""
    found, start = [], 0
    while start < len(arrival):
        size = data.draw(st.integers(1, 5), label="batch")
        found.append(arrival[start : start + size])
        start += size
    return found


PURE_INBOUNDS = [
    parsed(message)
    for message in [
        *taobao_order("3800011", LIFECYCLE_START),
        *jd_order("3800012", LIFECYCLE_START),
        *refund_before_shipping("3800013"),
    ]
]
PURE_IN_ORDER = fold(PURE_INBOUNDS)


@examples(1000, 20000)
@given(seed=st.integers(0, 2**32))
def test_the_state_machine_ends_in_order_whatever_the_storm(tally, seed):
    # A seeded shuffle: cheap enough for 1,000 sequences, and a failure names its seed.
    rng = random.Random(seed)
    arrival = [
        inbound for inbound in PURE_INBOUNDS for _ in range(rng.choice([1, 1, rng.randint(2, 10)]))
    ]
    rng.shuffle(arrival)
    tally.inputs += len(arrival)
    tally.duplicates += len(arrival) - len(PURE_INBOUNDS)
    assert fold(arrival) == PURE_IN_ORDER


# A change is pulled within 15 minutes (the schedule's period); here, 10 minutes on.
PULLED_AFTER = timedelta(minutes=10)
DROPPED_SHARE = 0.3


def jd_refund_apply(order_id: str) -> list[Message]:
    """A JD-style order paid, a refund applied for an hour on, refunded two hours
    after that: the list (by apply time) shows the apply; its refund only a re-read."""
    paid = jd_order(order_id, UNSHIPPED_START)[0]
    applied = UNSHIPPED_START + timedelta(hours=1)
    refund = {
        "id": f"{order_id}5",
        "orderId": order_id,
        "venderId": JD_SHOP.partition(":")[2],
        "applyRefundSum": "59.90",
        "reason": "no longer wanted",
        "applyTime": applied.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return [
        paid,
        *(
            Message("jd", f"jd-{order_id}-refund-{status}", topic, {**refund, **at})
            for status, topic, at in (
                ("0", "jd_pop_refund_apply", {"status": "0", "modified": refund["applyTime"]}),
                (
                    "3",
                    "jd_pop_refund_status",
                    {
                        "status": "3",
                        "modified": (applied + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S"),
                    },
                ),
            )
        ),
    ]


# name -> (the shop, its messages, the paths whose answers make up the final state)
HEALED_FAMILIES = {
    "taobao lifecycle": (
        TAOBAO_SHOP,
        lambda: taobao_order("3800101", LIFECYCLE_START),
        [f"/shops/{TAOBAO_SHOP}/orders/3800101", f"/shops/{TAOBAO_SHOP}/after-sales/R3800101"],
    ),
    "taobao refund before shipping": (
        TAOBAO_SHOP,
        lambda: refund_before_shipping("3800103"),
        [f"/shops/{TAOBAO_SHOP}/orders/3800103", f"/shops/{TAOBAO_SHOP}/after-sales/R3800103"],
    ),
    "jd refund apply": (
        JD_SHOP,
        lambda: jd_refund_apply("3800104"),
        [f"/shops/{JD_SHOP}/orders/3800104", f"/shops/{JD_SHOP}/after-sales/refund-38001045"],
    ),
    "doudian lifecycle": (
        DOUDIAN_SHOP,
        lambda: doudian_order("3800105", LIFECYCLE_START),
        [f"/shops/{DOUDIAN_SHOP}/orders/3800105", f"/shops/{DOUDIAN_SHOP}/after-sales/38001057"],
    ),
}


def happened_at(message: Message) -> datetime:
    """When the change happened: as the platform holds it (a thin message says
    less), else as the message says."""
    held = simulated()[message.platform].held_record(message)
    if held is not None:
        return held.modified
    event = parsed(message).event
    return event.scanned_at if isinstance(event, LogisticsTrace) else event.modified


def pullable(message: Message) -> bool:
    """A pull can find it: its record is in one of the platform's listings (courier
    scans and JD-style service requests are in none)."""
    return simulated()[message.platform].held_record(message) is not None


def live(the_world: World, shop_id: str, messages: list[Message], dropped: set[int]) -> dict:
    """The family as it happens: each change held on the platform, pushed unless
    dropped, and the schedules (reconciliation among them) run with the queues
    drained before the next; then time passes. Only the family's shop is connected,
    from before its first change."""
    timeline = sorted(messages, key=happened_at)
    the_world.reset(connected_at=happened_at(timeline[0]) - timedelta(hours=1))
    for other in set(DEMO_SHOPS) - {shop_id}:
        shops.disconnect(other, NOW)
    for index, message in enumerate(timeline):
        at = happened_at(message) + PULLED_AFTER
        hold_records(the_world.simulator, [message])
        if index not in dropped:
            webhook = message.signed(DEMO_CREDENTIALS[message.platform], at)
            answer = the_world.stack.request(
                "POST", webhook.path, webhook.body, webhook.headers, at=at
            )
            assert answer.status == 200
        with time_machine.travel(at, tick=False):
            run_schedules(app_module, at)
        drain(at)
    the_world.settle()
    deadlines = sorted((row.deadline_key, row.due_at, row.state) for row in DeadlineRecord.scan())
    return {"shown": final_state(the_world, PATHS_OF[shop_id]), "deadlines": deadlines}


PATHS_OF: dict[str, list[str]] = {}
LOSSLESS: dict[str, tuple[dict, object, object]] = {}


def lossless(the_world: World, family: str) -> tuple[dict, object, object]:
    if family not in LOSSLESS:
        shop_id, build, _ = HEALED_FAMILIES[family]
        LOSSLESS[family] = (
            live(the_world, shop_id, build(), set()),
            the_world.platform_effects(),
            the_world.subscriber.contents(),
        )
    return LOSSLESS[family]


@examples(4, 300)
@given(data=st.data(), family=st.sampled_from(sorted(HEALED_FAMILIES)))
def test_pushes_dropped_then_reconciled_end_as_the_run_that_lost_nothing(
    the_world, tally, data, family
):
    shop_id, build, paths = HEALED_FAMILIES[family]
    PATHS_OF[shop_id] = paths
    expected, expected_effects, expected_events = lossless(the_world, family)
    timeline = sorted(build(), key=happened_at)
    findable = [index for index, message in enumerate(timeline) if pullable(message)]
    share = min(len(findable), math.ceil(DROPPED_SHARE * len(timeline)))
    dropped = data.draw(
        st.sets(st.sampled_from(findable), min_size=share, max_size=share), label="dropped"
    )
    tally.inputs += len(timeline)
    tally.faults += len(dropped)

    got = live(the_world, shop_id, timeline, dropped)

    effects = the_world.platform_effects()
    receipts = the_world.subscriber.receipts()
    events = the_world.subscriber.contents()
    twice = sum(n - 1 for n in effects.values()) + sum(n - 1 for n in receipts.values())
    twice += sum(n - 1 for n in events.values())
    tally.duplicated_effects += twice
    assert twice == 0
    assert set(effects) == set(expected_effects)
    assert got == expected
    # The healed changes were applied when the pushes would have been: the same
    # events, down to their ids, reached the integrator.
    assert set(events) == set(expected_events)
