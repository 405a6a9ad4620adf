"""Policy files: `law.toml`, one `<platform>.toml` per platform module, `seller.toml`.

Validated at build and test time (chalicelib.policies.validate, with pydantic)
into `validated.json`; a cold start reads that into domain Policies, with no
pydantic. The file records the digests of the files it was validated from: a
policy file edited since fails loudly at start-up instead of being ignored.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.domain.policy import Limit, Policy, PolicyError, Rule

DIRECTORY = Path(__file__).parent
VALIDATED = DIRECTORY / "validated.json"


def source_digests(directory: Path = DIRECTORY) -> dict[str, str]:
    """The SHA-256 of every policy file in `directory`, by its name."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.glob("*.toml"))
    }


def _rule(fields: dict[str, Any]) -> Rule:
    limits = {param: Limit(**limit) for param, limit in fields["limits"].items()}
    return Rule(**{**fields, "limits": limits})


@cache
def read_validated(directory: Path = DIRECTORY) -> dict[str, Policy]:
    """Every platform's policy, as validated from the files in `directory`."""
    where = f"policies/{VALIDATED.name}"
    try:
        document = json.loads((directory / VALIDATED.name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PolicyError(where, str(error)) from None
    if document["sources"] != source_digests(directory):
        raise PolicyError(
            where, "older than the policy files: run `python -m chalicelib.policies.validate`"
        )
    return {
        platform: Policy({rule["id"]: _rule(rule) for rule in rules})
        for platform, rules in document["platforms"].items()
    }


def default_policy(platform: str) -> Policy:
    """The default policy of a platform's shops: law, platform, seller."""
    return read_validated()[platform]


def load_all() -> None:
    """Read every platform's validated policy now, so a missing or stale file
    stops the function at start-up."""
    read_validated()
