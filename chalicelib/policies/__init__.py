"""Policy files: `law.toml`, one `<platform>.toml` per platform module, `seller.toml`.

Read with tomllib, checked with pydantic, stacked into a domain Policy. A bad
file fails loudly at start-up, naming the file and the entry.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.domain.model import LANGUAGES
from chalicelib.domain.policy import (
    Limit,
    Policy,
    PolicyError,
    Rule,
    build_policy,
    require,
)
from chalicelib.domain.rules import NEEDED

DIRECTORY = Path(__file__).parent


class _Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    at_most: str | int | None = None
    at_least: str | int | None = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    source: str
    params: dict[str, int | str | list[str]]
    en: str
    zh: str
    limits: dict[str, _Limit] = {}


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    rules: list[_Entry]


def rules_in(path: Path, layer: str) -> list[Rule]:
    where = f"policies/{path.name}"
    try:
        document: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PolicyError(where, str(error)) from None
    try:
        entries = _File.model_validate(document).rules
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        location = first["loc"]
        entry = document.get("rules", [])[location[1]] if len(location) > 1 else {}
        name = entry.get("id", f"rules[{location[1]}]") if isinstance(entry, dict) else ""
        field = ".".join(str(part) for part in location[2:])
        raise PolicyError(f"{where}: {name}", f"{field or 'entry'}: {first['msg']}") from None
    rules = []
    for entry in entries:
        if not entry.id.startswith(f"{layer}."):
            raise PolicyError(f"{where}: {entry.id}", f"ids in this file start with '{layer}.'")
        if not entry.source.strip():
            raise PolicyError(f"{where}: {entry.id}", "every rule names its source")
        rules.append(
            Rule(
                id=entry.id,
                layer=layer,
                source=entry.source,
                params=entry.params,
                texts={language: getattr(entry, language) for language in LANGUAGES},
                limits={
                    name: Limit(at_most=limit.at_most, at_least=limit.at_least)
                    for name, limit in entry.limits.items()
                },
                origin=where,
            )
        )
    return rules


def load(platform: str, directory: Path = DIRECTORY) -> Policy:
    """The default policy of a platform's shops: law, platform, seller."""
    layers = [
        ("policies/law.toml", rules_in(directory / "law.toml", "law")),
        (f"policies/{platform}.toml", rules_in(directory / f"{platform}.toml", "platform")),
        ("policies/seller.toml", rules_in(directory / "seller.toml", "seller")),
    ]
    policy = build_policy(layers)
    require(policy, NEEDED, f"policies for {platform}")
    return policy


@cache
def default_policy(platform: str) -> Policy:
    return load(platform)


def load_all() -> None:
    """Load every platform's policy now, so a bad file stops the function at start-up."""
    from chalicelib.platforms import registry

    for platform in registry():
        default_policy(platform)
