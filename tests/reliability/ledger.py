"""The "nothing lost" ledger: every webhook the platform got a 2xx for must end
either reflected in the state (its event-log row is written in the same
transaction as the state change, so one implies the other) or held in the
quarantine. Checked at the end of every reliability run."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.domain.ids import platform_key
from chalicelib.store.records import EventLogRecord, QuarantineRecord
from simulator.webhooks import SignedWebhook
from tests.reliability.report import Tally
from tests.support import Answer, Stack


@dataclass
class Ledger:
    tally: Tally
    # The messages the platform saw taken in: a push acknowledged, or a message
    # its channel handed out confirmed.
    acked: set[str] = field(default_factory=set)

    def _note(self, key: str) -> None:
        if key in self.acked:
            self.tally.duplicates += 1
        self.tally.inputs += 1

    def send(self, stack: Stack, webhook: SignedWebhook) -> Answer:
        """Send as the platform does, noting what was acknowledged (each message of
        an array push)."""
        keys = [platform_key(webhook.platform, message_id) for message_id in webhook.message_ids]
        for key in keys:
            self._note(key)
        answer = stack.send(webhook)
        if 200 <= answer.status < 300:
            self.acked.update(keys)
        return answer

    def took(self, platform: str, message_id: str) -> None:
        """A message the platform's channel handed out and saw confirmed."""
        key = platform_key(platform, message_id)
        self._note(key)
        self.acked.add(key)

    def lost(self) -> list[str]:
        """Acknowledged messages that are neither in the state nor in quarantine."""
        keys = list(self.acked)
        # The log is keyed by entity, which the ledger does not know: a run's is small.
        held = {platform_key(row.platform, row.message_id) for row in EventLogRecord.scan()}
        held |= {row.message_key for row in QuarantineRecord.batch_get(keys)}
        missing = [key for key in keys if key not in held]
        self.tally.lost += len(missing)
        return missing
