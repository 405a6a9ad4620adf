"""Connected shops: `taobao:<user_id>`, `jd:<venderId>`."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from chalicelib.domain.model import ShopTokens
from chalicelib.platforms import registry
from chalicelib.service import tokens
from chalicelib.service.errors import ApiError, StorageUnavailableError
from chalicelib.store.records import SHOP_CONNECTED, ShopRecord


def parse_shop_id(shop_id: str) -> tuple[str, str]:
    platform, _, platform_shop = shop_id.partition(":")
    if platform not in registry() or not platform_shop:
        known = ", ".join(f"{name}:<id>" for name in registry())
        raise ApiError(400, "invalid_shop_id", f"shop id must look like {known}", "shop_id")
    return platform, platform_shop


def connect(
    shop_id: str, name: str, now: datetime, shop_tokens: ShopTokens | None = None
) -> ShopRecord:
    """Record a connected shop (an operator's or the local stack's); with tokens,
    ShopHook can also act on the platform for it."""
    platform, _ = parse_shop_id(shop_id)
    record = ShopRecord(
        shop_id, platform=platform, name=name, status=SHOP_CONNECTED, connected_at=now
    )
    if shop_tokens is not None:
        tokens.keep(record, shop_tokens)
    record.save()
    return record


def get(shop_id: str) -> ShopRecord:
    try:
        return ShopRecord.get(shop_id)
    except DoesNotExist:
        raise ApiError(404, "shop_not_found", f"no shop '{shop_id}'", "shop_id") from None
    except PynamoDBException as error:
        raise StorageUnavailableError("could not read the shop") from error


def all_shops() -> list[ShopRecord]:
    # The operator's view of a small table; the request paths never scan.
    return sorted(ShopRecord.scan(), key=lambda shop: shop.shop_id)


SHOP_DISCONNECTED = "disconnected"


def disconnect(shop_id: str) -> ShopRecord:
    """Forget the shop's tokens; its webhooks are acked and ignored from now on."""
    shop = get(shop_id)
    try:
        shop.update(
            actions=[
                ShopRecord.status.set(SHOP_DISCONNECTED),
                ShopRecord.sealed_tokens.remove(),
                ShopRecord.token_expires_at.remove(),
                ShopRecord.refresh_expires_at.remove(),
                ShopRecord.refresh_shard.remove(),
                ShopRecord.refresh_at.remove(),
            ]
        )
    except PynamoDBException as error:
        raise StorageUnavailableError("could not disconnect the shop") from error
    return shop
