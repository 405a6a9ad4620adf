"""Fixtures of the reliability suite: the tally every test fills, and one moto
stack per module that each example resets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.reliability.report import Tally
from tests.support import ANSWER_WATCHERS, Answer, Stack


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Counts for the summary table; every 5xx or stack trace answered is counted."""
    area = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    counts = Tally(area)

    def watch(method: str, path: str, answer: Answer) -> None:
        # A 503 is the right answer to an injected storage fault: the platform retries.
        asked_for = answer.status == 503 and counts.faults > 0
        if (answer.status >= 500 and not asked_for) or "Traceback" in str(answer.body):
            counts.server_errors += 1

    ANSWER_WATCHERS.append(watch)
    yield counts
    ANSWER_WATCHERS.remove(watch)
    request.node.user_properties.append(counts.as_property())


@pytest.fixture(scope="module")
def shared_stack() -> Iterator[Stack]:
    with mock_aws():
        yield Stack.create()
