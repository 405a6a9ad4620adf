"""An integrator's endpoint over time (platforms.md section 4): why a
subscription is disabled, how long an old signing secret keeps signing after a
rotation, when a failing endpoint is given up on, and when its circuit opens.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

# After a rotation, deliveries carry the old secret's signature too, for this
# long, so an integrator can switch its verifier over without losing any.
SECRET_OVERLAP = timedelta(hours=24)
# A subscription whose every delivery has failed this long is disabled (Svix's rule).
FAILING_FOR = timedelta(days=5)
# Timeouts in a row after which the endpoint's circuit opens: it is sent one
# delivery at a time (a probe) until it answers, so a hanging endpoint holds at
# most one delivery worker.
TIMEOUTS_TO_OPEN_CIRCUIT = 3


class DisabledReason(StrEnum):
    FAILING = "failing"  # every delivery failed for FAILING_FOR
    KEY_REVOKED = "key_revoked"  # the key that made it was revoked: for good
    INTEGRATOR = "integrator"  # PATCH {"enabled": false}
    OPERATOR = "operator"  # `shophook subscriptions disable`


def overlap_ends(rotated_at: datetime) -> datetime:
    return rotated_at + SECRET_OVERLAP


def previous_secret_signs(overlap_until: datetime | None, now: datetime) -> bool:
    return overlap_until is not None and now < overlap_until


def failing_too_long(failing_since: datetime | None, now: datetime) -> bool:
    """Every delivery since `failing_since` failed; long enough to give up?"""
    return failing_since is not None and now - failing_since >= FAILING_FOR


def opens_circuit(timeouts_in_a_row: int) -> bool:
    return timeouts_in_a_row >= TIMEOUTS_TO_OPEN_CIRCUIT
