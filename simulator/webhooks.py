"""A platform push before and after signing. Each simulated platform
(simulator/platforms/) signs its own with the platform's scheme (the same
functions ShopHook verifies with; tests check those against independently
computed vectors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.platforms.base import AppCredentials


@dataclass(frozen=True)
class SignedWebhook:
    """One HTTP request to ShopHook: path with query string, headers, body."""

    platform: str
    # The id of the message it carries; of an array push's, comma-separated.
    message_id: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def message_ids(self) -> list[str]:
        return self.message_id.split(",")


@dataclass(frozen=True)
class Message:
    """One platform push before signing."""

    platform: str
    message_id: str
    topic: str
    payload: dict[str, Any]
    shop_ref: str = ""  # Taobao-style pushes name the seller outside the content
    # Pushed thin (platforms.md 1.4): what the platform's detail call adds is left out.
    thin: bool = False

    def signed(self, credentials: AppCredentials, sent_at: datetime) -> SignedWebhook:
        # Imported here: the platform modules import this one.
        from simulator.platforms import registry

        return registry()[self.platform].signed_push(self, credentials, sent_at)
