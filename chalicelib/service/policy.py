"""A shop's effective policy: law, its platform, the seller defaults and its overrides."""

from __future__ import annotations

import json
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.domain.policy import Policy, PolicyError
from chalicelib.policies import default_policy
from chalicelib.service import shops
from chalicelib.service.errors import ApiError, StorageUnavailableError
from chalicelib.store.records import ShopRecord


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


def update(shop_id: str, body: Any, language: str) -> dict[str, Any]:
    overrides = body.get("overrides") if isinstance(body, dict) else None
    if not isinstance(overrides, dict) or not all(
        isinstance(params, dict) for params in overrides.values()
    ):
        raise ApiError(
            400,
            "invalid_body",
            'expected {"overrides": {"<rule id>": {"<parameter>": <value>}}}',
            "overrides",
        )
    shop = shops.get(shop_id)
    try:
        default_policy(shop.platform).with_overrides(overrides)
    except PolicyError as error:
        raise ApiError(
            422, "policy_not_allowed", error.message, f"overrides.{error.where}"
        ) from None
    shop.policy_overrides = json.dumps(overrides)
    try:
        shop.save()
    except PynamoDBException as error:
        raise StorageUnavailableError("could not save the policy") from error
    return describe(shop, language)
