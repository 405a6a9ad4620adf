"""Policy files checked at build and test time: read with tomllib, validated
with pydantic, stacked into a domain Policy. A bad file fails loudly, naming
the file and the entry.

`python -m chalicelib.policies.validate` writes every platform's validated
policy to `validated.json`, which a cold start reads without pydantic
(chalicelib.policies); `--check` only says whether it is up to date. The
Makefile runs it before `make run`, `make test` and `make package`.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, replace
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
from chalicelib.policies import DIRECTORY, VALIDATED, source_digests


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


class _LeftOut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    reason: str


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    rules: list[_Entry]
    # A platform's rules ShopHook found no source for: left out, each saying why;
    # the engine then runs no clock and raises no flag of that rule.
    left_out: list[_LeftOut] = []


def _read(path: Path) -> _File:
    where = f"policies/{path.name}"
    try:
        document: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PolicyError(where, str(error)) from None
    try:
        return _File.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        location = first["loc"]
        entry = document.get(location[0], [])[location[1]] if len(location) > 1 else {}
        listed = f"{location[0]}[{location[1]}]" if len(location) > 1 else str(location[0])
        name = entry.get("id", listed) if isinstance(entry, dict) else listed
        field = ".".join(str(part) for part in location[2:])
        raise PolicyError(f"{where}: {name}", f"{field or 'entry'}: {first['msg']}") from None


def left_out_in(path: Path) -> dict[str, str]:
    """The rules a platform's file leaves out, each with the reason it gives."""
    where = f"policies/{path.name}"
    left_out = {entry.id: entry.reason for entry in _read(path).left_out}
    for rule_id, reason in left_out.items():
        if not rule_id.startswith("platform.") or rule_id not in NEEDED:
            raise PolicyError(
                f"{where}: {rule_id}", "only a platform rule the engine uses is left out"
            )
        if not reason.strip():
            raise PolicyError(f"{where}: {rule_id}", "a rule left out says why")
    return left_out


def rules_in(path: Path, layer: str) -> list[Rule]:
    where = f"policies/{path.name}"
    entries = _read(path).rules
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
    platform_file = directory / f"{platform}.toml"
    left_out = left_out_in(platform_file)
    seller = [_checkable(rule, left_out) for rule in rules_in(directory / "seller.toml", "seller")]
    layers = [
        ("policies/law.toml", rules_in(directory / "law.toml", "law")),
        (f"policies/{platform}.toml", rules_in(platform_file, "platform")),
        ("policies/seller.toml", seller),
    ]
    policy = build_policy(layers)
    for rule_id in left_out.keys() & policy.rules.keys():
        raise PolicyError(f"policies/{platform}.toml: {rule_id}", "both defined and left out")
    needed = {rule_id: params for rule_id, params in NEEDED.items() if rule_id not in left_out}
    require(policy, needed, f"policies for {platform}")
    return policy


def _checkable(rule: Rule, left_out: Mapping[str, str]) -> Rule:
    """The rule without the limits bounded by a rule left out: an override could
    not be checked, so on this platform that parameter is not the shop's to change."""
    limits = {
        param: limit
        for param, limit in rule.limits.items()
        if not any(
            isinstance(bound, str) and bound.rpartition(".")[0] in left_out
            for bound in (limit.at_most, limit.at_least)
        )
    }
    return replace(rule, limits=limits)


def validated(platforms: list[str], directory: Path = DIRECTORY) -> dict[str, Any]:
    """Every platform's policy as validated, in the plain form chalicelib.policies
    reads, with the digests of the files it was validated from."""
    return {
        "sources": source_digests(directory),
        "platforms": {
            platform: [asdict(rule) for rule in load(platform, directory).rules.values()]
            for platform in platforms
        },
    }


def _rendered(platforms: list[str]) -> str:
    return json.dumps(validated(platforms), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    from chalicelib.platforms import registry

    rendered = _rendered(sorted(registry()))
    current = VALIDATED.read_text(encoding="utf-8") if VALIDATED.exists() else ""
    if rendered == current:
        return 0
    if "--check" in argv:
        print(f"{VALIDATED} is out of date: run `python -m chalicelib.policies.validate`")
        return 1
    VALIDATED.write_text(rendered, encoding="utf-8")
    print(f"wrote {VALIDATED}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
