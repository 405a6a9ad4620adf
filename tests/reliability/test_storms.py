"""Duplicate storms and reordering. Generated webhook sequences (a prefix of a
lifecycle, shuffled, each message sent up to 10 times) end in the state of the
clean in-order run, and every outbound effect (a platform action, an
integrator delivery) happens exactly once.

The full stack runs a sample per `make test` and 1,000 under `make soak`; the
pure state machine takes 1,000 sequences in both."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.scenarios import DEMO_CREDENTIALS, jd_order, taobao_order
from tests.reliability.ledger import Ledger
from tests.reliability.report import examples
from tests.reliability.world import (
    FAMILIES,
    LIFECYCLE_START,
    World,
    final_state,
    refund_before_shipping,
    world,
)
from tests.support import NOW, fold, parsed


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
        for message in build()[:length]:
            assert the_world.stack.deliver(message).status == 200
        the_world.settle()
        EXPECTED[family, length] = (final_state(the_world, paths), the_world.platform_effects())
    return EXPECTED[family, length]


@examples(6, 1000)
@given(data=st.data(), family=st.sampled_from(sorted(FAMILIES)))
def test_a_storm_of_duplicates_and_shuffles_ends_as_the_in_order_run_with_effects_once(
    the_world, tally, data, family
):
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
    ledger = Ledger(tally)
    for message in arrival:
        sent_at = NOW - timedelta(seconds=data.draw(st.integers(0, 590), label="skew"))
        webhook = message.signed(DEMO_CREDENTIALS[message.platform], sent_at)
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
    assert final_state(the_world, paths) == expected_state


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
