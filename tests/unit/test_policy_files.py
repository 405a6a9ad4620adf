"""Policy files: loaded and checked at start-up; a bad one names its file and entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chalicelib.domain.policy import PolicyError
from chalicelib.platforms import registry
from chalicelib.policies import DIRECTORY, load


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for name in ("law.toml", "taobao.toml", "jd.toml", "seller.toml"):
        shutil.copy(DIRECTORY / name, tmp_path / name)
    return tmp_path


def test_every_platform_module_has_a_valid_policy_file():
    for platform in registry():
        policy = load(platform)
        assert all(rule.source.strip() for rule in policy.rules.values())
        assert all(set(rule.texts) == {"en", "zh"} for rule in policy.rules.values())


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
            "law.toml",
            'id = "law.refund_method"',
            'id = "platform.refund_method"',
            r"ids in this file start with 'law.'",
        ),
    ],
)
def test_a_bad_policy_file_fails_loudly_naming_file_and_entry(policy_dir, file, old, new, message):
    edit(policy_dir / file, old, new)
    platform = "jd" if file == "jd.toml" else "taobao"
    with pytest.raises(PolicyError, match=message):
        load(platform, policy_dir)
