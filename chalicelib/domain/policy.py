"""Policies: the law, a platform and the seller's targets, as data.

Three layers, later ones may only tighten earlier ones. A shop may override
the seller parameters that declare `limits`, within the bound each limit names
(a number, or another rule's parameter such as `law.no_reason_return.days`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


class PolicyError(ValueError):
    """A policy entry that cannot be used; names where it is."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where, self.message = where, message


@dataclass(frozen=True)
class Limit:
    at_most: str | int | None = None
    at_least: str | int | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    layer: str
    source: str
    params: Mapping[str, Any]
    texts: Mapping[str, str]
    limits: Mapping[str, Limit] = field(default_factory=dict)
    origin: str = ""  # the file it was read from, for error messages

    @property
    def where(self) -> str:
        return f"{self.origin}: {self.id}" if self.origin else self.id

    def explain(self, language: str, **details: Any) -> str:
        """The rule's one-line text in `language`, with its parameters and `details`."""
        template = self.texts.get(language) or self.texts["en"]
        separator = "、" if language == "zh" else ", "
        values = {
            name: separator.join(value) if isinstance(value, list) else value
            for name, value in {**self.params, **details}.items()
        }
        return template.format(**values)


@dataclass(frozen=True)
class Policy:
    rules: Mapping[str, Rule]

    def rule(self, rule_id: str) -> Rule:
        return self.rules[rule_id]

    def value(self, reference: str) -> Any:
        """`rule.id.param` -> the parameter's value."""
        rule_id, _, param = reference.rpartition(".")
        return self.rules[rule_id].params[param]

    def bound(self, bound: str | int) -> int:
        """A limit's value: a number, or the value of the parameter it names."""
        return self.value(bound) if isinstance(bound, str) else bound

    def check_override(self, rule_id: str, param: str, value: Any) -> None:
        """Raise PolicyError (where = `rule.param`) unless the shop may set it."""
        where = f"{rule_id}.{param}"
        rule = self.rules.get(rule_id)
        if rule is None or rule.layer != "seller" or param not in rule.limits:
            raise PolicyError(where, "not a seller target a shop can change")
        if not isinstance(value, int) or isinstance(value, bool):
            raise PolicyError(where, "must be a whole number")
        limit = rule.limits[param]
        if limit.at_most is not None and value > self.bound(limit.at_most):
            raise PolicyError(
                where, f"must be at most {self.bound(limit.at_most)} ({limit.at_most})"
            )
        if limit.at_least is not None and value < self.bound(limit.at_least):
            raise PolicyError(
                where, f"must be at least {self.bound(limit.at_least)} ({limit.at_least})"
            )

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Policy:
        rules = dict(self.rules)
        for rule_id, params in overrides.items():
            for param, value in params.items():
                self.check_override(rule_id, param, value)
            rule = self.rules.get(rule_id)
            if rule is None or rule.layer != "seller":  # reached with no parameters
                raise PolicyError(rule_id, "not a seller target a shop can change")
            rules[rule_id] = replace(rules[rule_id], params={**rules[rule_id].params, **params})
        return Policy(rules)


def build_policy(layers: Iterable[tuple[str, Iterable[Rule]]]) -> Policy:
    """Stack the layers; refuse duplicate ids and limits that point nowhere."""
    rules: dict[str, Rule] = {}
    for where, layer_rules in layers:
        for rule in layer_rules:
            if rule.id in rules:
                raise PolicyError(f"{where}: {rule.id}", "defined twice")
            rules[rule.id] = rule
    policy = Policy(rules)
    for rule in rules.values():
        for param, limit in rule.limits.items():
            if param not in rule.params:
                raise PolicyError(rule.where, f"limits name '{param}', which it has no value for")
            for bound in (limit.at_most, limit.at_least):
                if isinstance(bound, str):
                    try:
                        policy.value(bound)
                    except KeyError:
                        raise PolicyError(
                            rule.where, f"limit refers to unknown '{bound}'"
                        ) from None
            try:
                policy.check_override(rule.id, param, rule.params[param])
            except PolicyError as error:
                raise PolicyError(rule.where, f"default {error}") from None
    return policy


def require(policy: Policy, needed: Mapping[str, Mapping[str, type]], where: str) -> None:
    """Fail loudly when a rule the engine uses is missing or has the wrong parameters."""
    for rule_id, params in needed.items():
        if rule_id not in policy.rules:
            raise PolicyError(f"{where}: {rule_id}", "missing")
        rule = policy.rules[rule_id]
        for param, kind in params.items():
            value = rule.params.get(param)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise PolicyError(rule.where, f"params.{param} must be {kind.__name__}")
