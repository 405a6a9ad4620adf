"""The "nothing lost" ledger: every webhook the platform got a 2xx for must end
either reflected in the state (its inbox row is written in the same
transaction as the state change, so one implies the other) or held in the
quarantine. Checked at the end of every reliability run."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.domain.ids import platform_key
from chalicelib.store.records import InboxRecord, QuarantineRecord
from simulator.webhooks import SignedWebhook
from tests.reliability.report import Tally
from tests.support import Answer, Stack


@dataclass
class Ledger:
    tally: Tally
    acked: dict[str, SignedWebhook] = field(default_factory=dict)

    def send(self, stack: Stack, webhook: SignedWebhook) -> Answer:
        """Send as the platform does, noting what was acknowledged (each message of
        an array push)."""
        keys = [platform_key(webhook.platform, message_id) for message_id in webhook.message_ids]
        self.tally.duplicates += sum(key in self.acked for key in keys)
        self.tally.inputs += len(keys)
        answer = stack.send(webhook)
        if 200 <= answer.status < 300:
            self.acked.update(dict.fromkeys(keys, webhook))
        return answer

    def lost(self) -> list[str]:
        """Acknowledged messages that are neither in the state nor in quarantine."""
        keys = list(self.acked)
        held = {row.message_key for row in InboxRecord.batch_get(keys)}
        held |= {row.message_key for row in QuarantineRecord.batch_get(keys)}
        missing = [key for key in keys if key not in held]
        self.tally.lost += len(missing)
        return missing
