"""How long to wait before trying outbound work again: exponential backoff with
"equal jitter" (half of each wait fixed, half random), so retries from many
workers spread out while the whole budget still spans a known minimum."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # tries in all, the first included; then the work is dead-lettered
    first_wait_seconds: int
    longest_wait_seconds: int

    def wait_seconds(self, failed_attempt: int, jitter: float) -> int:
        """The wait after attempt `failed_attempt` (1-based) failed; `jitter` in [0, 1)."""
        ceiling = min(
            self.longest_wait_seconds, self.first_wait_seconds * 2 ** (failed_attempt - 1)
        )
        return ceiling // 2 + int(ceiling / 2 * jitter)

    def shortest_span_seconds(self) -> int:
        """From the first attempt to the last, with the least jitter."""
        return sum(self.wait_seconds(attempt, 0.0) for attempt in range(1, self.attempts))

    def longest_span_seconds(self) -> int:
        return sum(self.wait_seconds(attempt, 0.999999) for attempt in range(1, self.attempts))


# Platform calls: a busy platform gets minutes, not days; the seller sees the outcome.
PLATFORM_CALLS = RetryPolicy(attempts=8, first_wait_seconds=30, longest_wait_seconds=900)
# Integrator deliveries: at least 24 hours of retries (platforms.md section 4).
# An SQS visibility timeout cannot exceed 12 hours, hence the 6-hour ceiling.
INTEGRATOR_DELIVERIES = RetryPolicy(
    attempts=18, first_wait_seconds=60, longest_wait_seconds=6 * 3600
)
