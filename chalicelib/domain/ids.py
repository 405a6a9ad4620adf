"""Identities and the one place their text encodings are defined.

A shop is `<platform>:<the platform's shop id>` (`taobao:2200000001`). Orders
and after-sale cases are keyed by platform and id, since a platform's ids are
unique on that platform and a JD-style courier scan names its order but not its
shop: `taobao#3010001` in their tables, `taobao#order#3010001` where orders and
cases share a space (event log, deadlines). A platform's message is
`<platform>#<message id>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The longest platform id (message, order, case, shop) ShopHook takes, in
# characters. Real ones are under 40; at 4 bytes a character, keys built on it
# stay far under DynamoDB's limits (2,048 bytes a partition key, 1,024 a sort key).
MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class ShopId:
    platform: str
    platform_shop_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.platform_shop_id}"

    @classmethod
    def parse(cls, text: str) -> ShopId:
        """Raise ValueError unless `text` is `<platform>:<id>` with both parts."""
        platform, separator, platform_shop_id = text.partition(":")
        if not separator or not platform or not platform_shop_id:
            raise ValueError(f"a shop id looks like <platform>:<id>, not {text!r}")
        return cls(platform, platform_shop_id)


def platform_of(shop_id: str) -> str:
    """The platform of a shop id (its part before the first ':')."""
    return shop_id.partition(":")[0]


class EntityKind(StrEnum):
    ORDER = "order"
    CASE = "case"


@dataclass(frozen=True)
class EntityRef:
    """An order or an after-sale case on a platform."""

    platform: str
    kind: EntityKind
    entity_id: str

    @classmethod
    def order(cls, platform: str, order_id: str) -> EntityRef:
        return cls(platform, EntityKind.ORDER, order_id)

    @classmethod
    def case(cls, platform: str, case_id: str) -> EntityRef:
        return cls(platform, EntityKind.CASE, case_id)

    @property
    def key(self) -> str:
        """Its key in the orders or the cases table."""
        return platform_key(self.platform, self.entity_id)

    @property
    def stream(self) -> str:
        """Its name where orders and cases share one key space (event log, deadlines)."""
        return f"{self.platform}#{self.kind}#{self.entity_id}"

    @classmethod
    def from_stream(cls, stream: str) -> EntityRef:
        platform, kind, entity_id = stream.split("#", 2)
        return cls(platform, EntityKind(kind), entity_id)

    @classmethod
    def from_key(cls, kind: EntityKind, key: str) -> EntityRef:
        """The inverse of `key`."""
        platform, _, entity_id = key.partition("#")
        return cls(platform, kind, entity_id)

    def deadline_key(self, rule: str) -> str:
        return f"{self.stream}#{rule}"


def platform_key(platform: str, local_id: str) -> str:
    """`<platform>#<id>`: an order's or case's table key, or a quarantined message's key."""
    return f"{platform}#{local_id}"
