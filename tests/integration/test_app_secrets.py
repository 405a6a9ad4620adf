"""App secrets in AWS Secrets Manager (issue 18): the environment holds only their
names; the secret is read through Powertools Parameters, cached, and a failure to
read it is a 503 the platform retries, never a 500 or a leak."""

from __future__ import annotations

import os

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from chalicelib.settings import Settings, SettingsError
from simulator.scenarios import taobao_order
from tests.support import NOW, set_env

MESSAGE = taobao_order("3900001", NOW)[1]


@pytest.fixture
def secret_in_secrets_manager(stack, monkeypatch) -> str:
    """The Taobao-style app secret held in Secrets Manager, named in the environment."""
    parameters.clear_caches()
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="shophook-test/taobao", SecretString="demo-secret")["ARN"]
    monkeypatch.delenv("SHOPHOOK_TAOBAO_APP_SECRET")
    set_env(monkeypatch, {"SHOPHOOK_TAOBAO_APP_SECRET_NAME": arn})
    yield arn
    parameters.clear_caches()


def test_a_secret_named_in_the_environment_verifies_webhooks(stack, secret_in_secrets_manager):
    assert stack.deliver(MESSAGE).status == 200
    assert "demo-secret" not in os.environ.values()


def test_the_secret_is_cached_so_a_warm_function_makes_no_call(stack, secret_in_secrets_manager):
    assert stack.deliver(MESSAGE).status == 200
    boto3.client("secretsmanager", region_name="us-east-1").delete_secret(
        SecretId=secret_in_secrets_manager, ForceDeleteWithoutRecovery=True
    )
    assert stack.deliver(taobao_order("3900002", NOW)[1]).status == 200


def test_a_secret_that_cannot_be_read_is_a_503_the_platform_retries(stack, monkeypatch):
    parameters.clear_caches()
    monkeypatch.delenv("SHOPHOOK_TAOBAO_APP_SECRET")
    set_env(monkeypatch, {"SHOPHOOK_TAOBAO_APP_SECRET_NAME": "shophook-test/missing"})
    answer = stack.deliver(MESSAGE)
    assert (answer.status, answer.body["code"], answer.body["success"]) == (
        503,
        "secret_unavailable",
        False,
    )
    parameters.clear_caches()


def test_a_secret_given_both_ways_is_refused_at_start():
    with pytest.raises(
        SettingsError, match="SHOPHOOK_JD_APP_SECRET or SHOPHOOK_JD_APP_SECRET_NAME"
    ):
        Settings.from_environ(
            {"SHOPHOOK_JD_APP_SECRET": "s", "SHOPHOOK_JD_APP_SECRET_NAME": "shophook/jd"}
        )
