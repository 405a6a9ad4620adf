"""The generated webhook stream both handlers get: orders, refunds and courier
scans from both platforms, with 5% duplicates and 10% out of order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from simulator.scenarios import DEMO_CREDENTIALS, Message, jd_order, taobao_order
from simulator.webhooks import SignedWebhook

DUPLICATES = 0.05
OUT_OF_ORDER = 0.10


def webhooks(orders: int, seed: int, first_id: int = 0) -> list[Message]:
    """The messages, unsigned: each is signed as it is sent (`signed_now`), so a
    slow run on a busy machine does not outlive the signatures' 10 minutes."""
    start = datetime.now(UTC) - timedelta(days=5)
    messages = []
    for number in range(first_id, first_id + orders):
        if number % 2:
            messages += jd_order(str(900_000 + number), start)
        else:
            messages += taobao_order(str(3_700_000 + number), start)
    chooser = random.Random(seed)
    for index in range(len(messages) - 1):
        if chooser.random() < OUT_OF_ORDER:
            messages[index], messages[index + 1] = messages[index + 1], messages[index]
    for _ in range(round(len(messages) * DUPLICATES)):
        position = chooser.randrange(len(messages))
        messages.insert(chooser.randrange(position, len(messages) + 1), messages[position])
    return messages


def signed_now(message: Message) -> SignedWebhook:
    return message.signed(DEMO_CREDENTIALS[message.platform], datetime.now(UTC))
