"""A signed webhook as a platform sends it to ShopHook; each simulated platform
(simulator/platforms/) signs its own with the platform's scheme (the same
functions ShopHook verifies with; tests check those against independently
computed vectors)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SignedWebhook:
    """One HTTP request to ShopHook: path with query string, headers, body."""

    platform: str
    message_id: str
    path: str
    headers: dict[str, str]
    body: bytes
