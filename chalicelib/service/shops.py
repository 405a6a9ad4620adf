"""Connected shops: `<platform>:<the platform's shop id>`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain.ids import ShopId
from chalicelib.domain.model import SHANGHAI, ShopStatus, ShopTokens
from chalicelib.domain.pulls import Backfill
from chalicelib.platforms import registry
from chalicelib.service import channel, tokens
from chalicelib.service.errors import InvalidInputError, NotFoundError
from chalicelib.store import shops
from chalicelib.store.records import ShopRecord


def parse_shop_id(shop_id: str) -> ShopId:
    try:
        parsed = ShopId.parse(shop_id)
    except ValueError:
        parsed = None
    if parsed is None or parsed.platform not in registry():
        known = ", ".join(f"{name}:<id>" for name in registry())
        raise InvalidInputError("invalid_shop_id", f"shop id must look like {known}", "shop_id")
    return parsed


def connect(
    shop_id: str, name: str, now: datetime, shop_tokens: ShopTokens | None = None
) -> ShopRecord:
    """Record a connected shop (an operator's or the local stack's); with tokens,
    ShopHook can also act on the platform for it, and pulls it from now on (its
    history: `shophook reconcile SHOP --since`), and subscribes it to its
    platform's message channel."""
    parsed = parse_shop_id(shop_id)
    record = ShopRecord(
        shop_id,
        platform=parsed.platform,
        name=name,
        status=ShopStatus.CONNECTED,
        connected_at=now,
        pull_cursor=now,
    )
    if shop_tokens is not None:
        tokens.keep(record, shop_tokens)
    shops.save(record)
    if shop_tokens is not None:
        channel.subscribe(record, now)
    return record


def get(shop_id: str) -> ShopRecord:
    record = shops.read(shop_id)
    if record is None:
        raise NotFoundError("shop_not_found", f"no shop '{shop_id}'", "shop_id")
    return record


def all_shops() -> list[ShopRecord]:
    return shops.every()


def disconnect(shop_id: str, now: datetime) -> ShopRecord:
    """Forget the shop's tokens; its webhooks are acked and ignored from now on,
    and its platform's message channel is told to stop its messages."""
    record = get(shop_id)
    shops.disconnect(record)
    channel.unsubscribe(record, now)
    return record


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).isoformat() if moment is not None else None


def view(record: ShopRecord) -> dict[str, Any]:
    """A shop as its integrators and operators see it: no tokens, no settings."""
    backfill = None
    if record.backfill_since is not None and record.backfill_until is not None:
        progress = Backfill(record.backfill_since, record.backfill_until).progress(
            record.pull_cursor
        )
        backfill = {
            "since": _time(record.backfill_since),
            "until": _time(record.backfill_until),
            "progress": round(progress, 4),
            "done": progress >= 1.0,
        }
    return {
        "shop_id": record.shop_id,
        "platform": record.platform,
        "name": record.name,
        "status": record.status,
        "connected_at": _time(record.connected_at),
        "reconcile": {"cursor": _time(record.pull_cursor)},
        "backfill": backfill,
    }
