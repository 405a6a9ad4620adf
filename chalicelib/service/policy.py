"""A shop's effective policy: law, its platform, the seller defaults and its overrides."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib.domain.policy import Policy, PolicyError
from chalicelib.policies import default_policy
from chalicelib.service import shops
from chalicelib.service.errors import NotAllowedError
from chalicelib.store import shops as stored_shops
from chalicelib.store.records import ShopRecord

if TYPE_CHECKING:  # named only: the commands (pydantic) load with a request
    from chalicelib.service.commands import PolicyRequest


def for_shop(shop: ShopRecord) -> Policy:
    return default_policy(shop.platform).with_overrides(json.loads(shop.policy_overrides))


def describe(shop: ShopRecord, language: str) -> dict[str, Any]:
    policy = for_shop(shop)
    return {
        "shop_id": shop.shop_id,
        "overrides": json.loads(shop.policy_overrides),
        "rules": [
            {
                "id": rule.id,
                "layer": rule.layer,
                "params": dict(rule.params),
                "source": rule.source,
                "explanation": rule.explain(language),
                "adjustable": {
                    param: {"at_most": limit.at_most, "at_least": limit.at_least}
                    for param, limit in rule.limits.items()
                },
            }
            for rule in policy.rules.values()
        ],
    }


def show(shop_id: str, language: str) -> dict[str, Any]:
    return describe(shops.get(shop_id), language)


def update(shop_id: str, command: PolicyRequest, language: str) -> dict[str, Any]:
    shop = shops.get(shop_id)
    try:
        default_policy(shop.platform).with_overrides(command.overrides)
    except PolicyError as error:
        raise NotAllowedError(
            "policy_not_allowed", error.message, f"overrides.{error.where}"
        ) from None
    shop.policy_overrides = json.dumps(command.overrides)
    stored_shops.save(shop)
    return describe(shop, language)
