"""The retry schedule: exponential, capped, jittered, and long enough."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.retry import INTEGRATOR_DELIVERIES, PLATFORM_CALLS, RetryPolicy
from chalicelib.store.queues import ALL_QUEUES

DAY = 24 * 3600
SQS_LONGEST_VISIBILITY = 12 * 3600


@given(
    policy=st.sampled_from([PLATFORM_CALLS, INTEGRATOR_DELIVERIES]),
    attempt=st.integers(min_value=1, max_value=40),
    jitter=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_each_wait_is_half_fixed_half_random_and_never_over_the_ceiling(policy, attempt, jitter):
    ceiling = min(policy.longest_wait_seconds, policy.first_wait_seconds * 2 ** (attempt - 1))
    wait = policy.wait_seconds(attempt, jitter)
    assert ceiling // 2 <= wait <= ceiling


@given(st.integers(min_value=1, max_value=30))
def test_the_least_wait_never_shrinks_from_one_attempt_to_the_next(attempt):
    for policy in (PLATFORM_CALLS, INTEGRATOR_DELIVERIES):
        assert policy.wait_seconds(attempt, 0) <= policy.wait_seconds(attempt + 1, 0)


def test_integrators_get_at_least_a_day_of_retries_within_sqs_limits():
    assert INTEGRATOR_DELIVERIES.shortest_span_seconds() >= DAY
    for queue in ALL_QUEUES:
        # A wait is a visibility timeout; the whole span must fit the retention.
        assert queue.retry.longest_wait_seconds <= SQS_LONGEST_VISIBILITY
        assert queue.retry.longest_span_seconds() < 14 * DAY


def test_a_one_attempt_budget_has_no_span():
    assert RetryPolicy(1, 30, 60).shortest_span_seconds() == 0
