"""Policy files: loaded and checked at start-up; a bad one names its file and entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chalicelib.domain.policy import PolicyError
from chalicelib.domain.rules import NEEDED
from chalicelib.platforms import registry
from chalicelib.policies import DIRECTORY, VALIDATED, default_policy, read_validated
from chalicelib.policies.validate import left_out_in, load, main


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for name in ("law.toml", "taobao.toml", "jd.toml", "doudian.toml", "seller.toml"):
        shutil.copy(DIRECTORY / name, tmp_path / name)
    return tmp_path


def test_every_platform_module_has_a_valid_policy_file():
    for platform in registry():
        policy = load(platform)
        assert all(rule.source.strip() for rule in policy.rules.values())
        assert all(set(rule.texts) == {"en", "zh"} for rule in policy.rules.values())


def test_the_validated_policies_read_at_start_are_what_validating_the_files_gives():
    """What a cold start reads without pydantic cannot drift from the files."""
    assert set(read_validated()) == set(registry())
    for platform in registry():
        assert default_policy(platform) == load(platform)
    assert main(["--check"]) == 0


def test_a_policy_file_edited_since_it_was_validated_stops_the_start(policy_dir):
    shutil.copy(VALIDATED, policy_dir / VALIDATED.name)
    assert read_validated(policy_dir) == read_validated()
    edit(policy_dir / "seller.toml", "params = { days = 7 }", "params = { days = 8 }")
    with pytest.raises(PolicyError, match="older than the policy files"):
        read_validated.__wrapped__(policy_dir)


def test_no_validated_policies_stops_the_start(policy_dir):
    with pytest.raises(PolicyError, match=f"policies/{VALIDATED.name}: "):
        read_validated(policy_dir)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "taobao.toml",
            "params = { hours = 48 }",
            'params = { hours = "two days" }',
            r"policies/taobao.toml: platform.ship_by: params.hours",
        ),
        (
            "law.toml",
            'source = "消费者权益保护法 (2014) Art. 25"\nparams = { days = 7 }',
            'source = " "\nparams = { days = 7 }',
            r"policies/law.toml: law.refund_after_return: every rule names its source",
        ),
        (
            "seller.toml",
            'at_least = "law.no_reason_return.days"',
            'at_least = "law.nothing.days"',
            r"seller.no_reason_return: limit refers to unknown 'law.nothing.days'",
        ),
        (
            "seller.toml",
            "params = { days = 7 }\nlimits = { days = { at_least",
            "params = { days = 5 }\nlimits = { days = { at_least",
            r"seller.no_reason_return.days: must be at least 7",
        ),
        (
            "taobao.toml",
            'id = "platform.fake_shipment"',
            'id = "platform.ship_by"',
            r"policies/taobao.toml: platform.ship_by: defined twice",
        ),
        (
            "taobao.toml",
            'id = "platform.fake_shipment"',
            'id = "platform.fake_shipments"',
            r"policies for taobao: platform.fake_shipment: missing",
        ),
        ("jd.toml", "[[rules]]", "[[rules]\n", r"policies/jd.toml"),
        (
            "doudian.toml",
            'id = "platform.ship_by"\nreason = "no sourced',
            'id = "platform.ship_by"\nreason = " "\n#',
            r"policies/doudian.toml: platform.ship_by: a rule left out says why",
        ),
        (
            "doudian.toml",
            'id = "platform.ship_by"\nreason',
            'id = "seller.ship_within"\nreason',
            r"policies/doudian.toml: seller.ship_within: only a platform rule",
        ),
        (
            "doudian.toml",
            'id = "platform.fake_shipment"',
            'id = "platform.ship_by"',
            r"policies for doudian: platform.fake_shipment: missing",
        ),
        (
            "law.toml",
            'id = "law.refund_method"',
            'id = "platform.refund_method"',
            r"ids in this file start with 'law.'",
        ),
    ],
)
def test_a_bad_policy_file_fails_loudly_naming_file_and_entry(policy_dir, file, old, new, message):
    edit(policy_dir / file, old, new)
    platform = file.removesuffix(".toml") if file in ("jd.toml", "doudian.toml") else "taobao"
    with pytest.raises(PolicyError, match=message):
        load(platform, policy_dir)


def test_a_rule_left_out_is_not_required_and_not_the_shops_to_change_by_it():
    """The Doudian-style file leaves out every platform rule it found no source for
    (each saying why): none is in its policy, the law's and the seller's are, and
    the seller's refund target, bounded by a platform rule elsewhere, is not a
    shop's to change there."""
    left_out = left_out_in(DIRECTORY / "doudian.toml")
    needed = {rule_id for rule_id in NEEDED if rule_id.startswith("platform.")}
    assert set(left_out) == needed
    assert all(len(reason) > 20 for reason in left_out.values())
    policy = load("doudian")
    assert not any(rule_id.startswith("platform.") for rule_id in policy.rules)
    assert "seller.refund_within" in policy.rules and "law.no_reason_return" in policy.rules
    with pytest.raises(PolicyError, match="not a seller target a shop can change"):
        policy.check_override("seller.refund_within", "hours", 12)
    load("taobao").check_override("seller.refund_within", "hours", 12)
