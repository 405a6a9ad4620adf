"""Faults at a chosen AWS call: the n-th call the app (or Lambda's SQS poller)
makes fails the way AWS or Lambda fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ReadTimeoutError

from tests.support import aws_error, on_every_aws_call


class Crash(BaseException):
    """The Lambda invocation dies here (timeout, out of memory): nothing after it
    runs, and nothing catches it on the way out."""


# throttled: refused before it ran. timed_out: it ran, but the answer never came.
# crashed: it ran, then the process died. lost_race: a concurrent writer changed
# the version-guarded row first (only where a version guard exists).
KINDS = ("throttled", "timed_out", "crashed", "lost_race")
THROTTLE_CODES = {"dynamodb": "ProvisionedThroughputExceededException", "sqs": "RequestThrottled"}


def _version_guards(request: dict[str, Any]) -> list[int]:
    """Positions of a TransactWriteItems' items whose condition checks a version."""
    items = json.loads(request["body"]).get("TransactItems", [])
    guarded = []
    for position, item in enumerate(items):
        (operation,) = item.values()
        names = operation.get("ExpressionAttributeNames", {}).values()
        if "version" in names and "ConditionExpression" in operation:
            guarded.append(position)
    return guarded


@dataclass
class FaultAt:
    """Fail call number `at` (0-based, counted from arming) with `kind`."""

    at: int
    kind: str
    calls: list[str] = field(default_factory=list)
    fired: bool = False

    @classmethod
    @contextmanager
    def armed(cls, at: int, kind: str) -> Iterator[FaultAt]:
        fault = cls(at, kind)
        with on_every_aws_call(fault._before), on_every_aws_call(fault._after, "after-call"):
            yield fault

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        self.calls.append(model.name)
        if len(self.calls) - 1 != self.at:
            return None
        if self.kind == "throttled":
            self.fired = True
            return aws_error(THROTTLE_CODES.get(model.service_model.endpoint_prefix, "Throttling"))
        if self.kind == "lost_race" and model.name == "TransactWriteItems":
            guards = _version_guards(params)
            if guards:
                self.fired = True
                response, error = aws_error("TransactionCanceledException")
                error["CancellationReasons"] = [
                    {"Code": "ConditionalCheckFailed" if i in guards else "None"}
                    for i in range(max(guards) + 1)
                ]
                return response, error
        return None

    def _after(self, model: Any, **_: Any) -> None:
        if len(self.calls) - 1 != self.at or self.fired:
            return
        if self.kind == "timed_out":
            self.fired = True
            raise ReadTimeoutError(endpoint_url="https://aws.invalid")
        if self.kind == "crashed":
            self.fired = True
            raise Crash(f"after {model.name}")
