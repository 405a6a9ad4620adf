"""infra/template.json: generated from the models, with every alarm ops relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.platforms import registry
from chalicelib.store.records import ALL_RECORDS
from shophook.infra import FUNCTIONS, render, template

ROOT = Path(__file__).parents[2]


def test_the_committed_template_is_what_the_models_generate():
    assert (ROOT / "infra" / "template.json").read_text(encoding="utf-8") == render()


def test_every_table_with_its_indexes_ttl_recovery_and_encryption():
    resources = template()["Resources"]
    tables = {
        r["Properties"]["TableName"]["Fn::Sub"]: r
        for r in resources.values()
        if r.get("Type") == "AWS::DynamoDB::Table"
    }
    assert set(tables) == {
        "${TablePrefix}" + r.Meta.table_name.removeprefix("test-") for r in ALL_RECORDS
    }
    for table in tables.values():
        properties = table["Properties"]
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        assert properties["SSESpecification"]["SSEEnabled"]
        assert properties["KeySchema"][0]["KeyType"] == "HASH"
        assert table["DeletionPolicy"] == "Retain"
    deadlines = tables["${TablePrefix}deadlines"]["Properties"]["GlobalSecondaryIndexes"]
    assert {index["IndexName"] for index in deadlines} == {"due", "pending_by_shop"}
    sessions = tables["${TablePrefix}console-sessions"]["Properties"]
    assert sessions["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


@pytest.mark.parametrize(
    ("alarm", "watches"),
    [
        ("WebhookServerErrorRateAlarm", "5XXError"),
        ("WebhookRejectionSpikeAlarm", "WebhookRejected"),
        ("DeadlinesBreachedAlarm", "DeadlinesBreached"),
        ("APIHandlerErrorsAlarm", "Errors"),
        ("APIHandlerThrottlesAlarm", "Throttles"),
        ("SweepDeadlinesErrorsAlarm", "Errors"),
        ("SweepDeadlinesThrottlesAlarm", "Throttles"),
        ("RefreshTokensErrorsAlarm", "Errors"),
        ("RefreshTokensThrottlesAlarm", "Throttles"),
        ("RequeueOutboxErrorsAlarm", "Errors"),
        ("DeliverOutboxErrorsAlarm", "Errors"),
        ("DeliverOutboxThrottlesAlarm", "Throttles"),
        ("DeliverWebhooksErrorsAlarm", "Errors"),
        ("DeliverWebhooksThrottlesAlarm", "Throttles"),
        ("OutboxDeadLetterDepthAlarm", "ApproximateNumberOfMessagesVisible"),
        ("DeliveriesDeadLetterDepthAlarm", "ApproximateNumberOfMessagesVisible"),
        ("DynamoDBReadThrottlesAlarm", "ReadThrottleEvents"),
        ("DynamoDBWriteThrottlesAlarm", "WriteThrottleEvents"),
        ("TellChangesErrorsAlarm", "Errors"),
        ("ChangesLagAlarm", "IteratorAge"),
        ("ReconcileErrorsAlarm", "ReconcileErrors"),
    ],
)
def test_each_alarm_watches_its_metric_and_notifies_the_topic(alarm, watches):
    properties = template()["Resources"][alarm]["Properties"]
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    names = {
        m["MetricStat"]["Metric"]["MetricName"] for m in properties["Metrics"] if "MetricStat" in m
    }
    assert watches in names


def test_reconciliation_alarms_on_refusals_that_last_15_minutes_on_any_platform():
    from chalicelib.platforms import registry

    properties = template()["Resources"]["ReconcileErrorsAlarm"]["Properties"]
    assert (properties["EvaluationPeriods"], properties["Threshold"]) == (3, 0)
    watched = {
        dimension["Value"]
        for metric in properties["Metrics"]
        if "MetricStat" in metric
        for dimension in metric["MetricStat"]["Metric"]["Dimensions"]
        if dimension["Name"] == "platform"
    }
    assert watched == set(registry())


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_function_roles_grant_no_wildcard_actions_on_data(stage):
    policy = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
    for statement in policy["Statement"]:
        assert all("*" not in action for action in statement["Action"])
        if any(action.startswith("dynamodb:") for action in statement["Action"]):
            assert all(f"table/shophook-{stage}-" in resource for resource in statement["Resource"])


def test_the_orders_and_cases_streams_feed_the_change_teller_and_never_skip_a_record():
    resources = template()["Resources"]
    streamed = {
        name
        for name, resource in resources.items()
        if "StreamSpecification" in resource.get("Properties", {})
    }
    assert streamed == {"OrderTable", "CaseTable"}
    for table in streamed:
        spec = resources[table]["Properties"]["StreamSpecification"]
        assert spec == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    sources = resources["TellChanges"]["Properties"]["Events"].values()
    assert {source["Properties"]["Stream"]["Fn::GetAtt"][0] for source in sources} == streamed
    for source in sources:
        properties = source["Properties"]
        assert properties["MaximumRetryAttempts"] == properties["MaximumRecordAgeInSeconds"] == -1
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # No function's code may commit a change before the tables stream it.
    for function in FUNCTIONS:
        if function != "TellChanges":
            assert set(resources[function]["DependsOn"]) == streamed


def test_tokens_are_sealed_under_a_rotated_key_only_the_functions_may_use():
    resources = template()["Resources"]
    assert resources["TokenKey"]["Properties"]["EnableKeyRotation"] is True
    use = resources["TokenKeyUse"]["Properties"]
    assert use["Roles"] == [
        {"Ref": f"{function}Role"}
        for function in (
            "ApiHandler",
            "SweepDeadlines",
            "RefreshTokens",
            "RequeueOutbox",
            "ReconcileShops",
            "DrainChannels",
            "DeliverOutbox",
            "DeliverWebhooks",
            "TellChanges",
        )
    ]
    (statement,) = use["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == {"Fn::GetAtt": ["TokenKey", "Arn"]}
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["SHOPHOOK_KMS_KEY_ID"] == {"Fn::GetAtt": ["TokenKey", "Arn"]}


def test_each_queue_is_fifo_with_a_dlq_after_its_retry_budget():
    from chalicelib.store.queues import ALL_QUEUES

    resources = template()["Resources"]
    for queue in ALL_QUEUES:
        name = queue.name.capitalize()
        main = resources[f"{name}Queue"]["Properties"]
        dead = resources[f"{name}DeadLetterQueue"]["Properties"]
        assert main["FifoQueue"] is True and dead["FifoQueue"] is True
        assert main["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]},
            "maxReceiveCount": queue.retry.attempts,
        }
        assert main["QueueName"] == {"Fn::Sub": "${TablePrefix}" + f"{queue.name}.fifo"}
    for consumer in ("DeliverOutbox", "DeliverWebhooks"):
        events = resources[consumer]["Properties"]["Events"]
        (source,) = events.values()
        assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (deliveries,) = resources["DeliverWebhooks"]["Properties"]["Events"].values()
    # Endpoints that hang before their circuits open cannot take the account's
    # Lambda concurrency: the deliveries consumer runs at most its reservation.
    assert deliveries["Properties"]["ScalingConfig"] == {
        "MaximumConcurrency": {"Ref": "ConsumerConcurrency"}
    }
    (statement,) = resources["QueueUse"]["Properties"]["PolicyDocument"]["Statement"]
    assert all(action.startswith("sqs:") and "*" not in action for action in statement["Action"])
    assert len(statement["Resource"]) == 2 * len(ALL_QUEUES)


def test_the_api_gets_its_public_url_from_a_parameter():
    """Shop connect needs SHOPHOOK_PUBLIC_URL; the stack never set it (issue 18)."""
    rendered = template()
    variables = rendered["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["SHOPHOOK_PUBLIC_URL"] == {"Ref": "PublicUrl"}
    assert rendered["Parameters"]["PublicUrl"]["Type"] == "String"


def test_no_function_environment_holds_a_secret():
    """Issue 18: the apps' secrets were plain environment variables (readable with
    lambda:GetFunctionConfiguration). The template keeps them in Secrets Manager,
    made from the NoEcho parameters; the environment names them."""
    rendered = template()
    resources = rendered["Resources"]
    no_echo = {name for name, p in rendered["Parameters"].items() if p.get("NoEcho")}
    assert no_echo == {f"{platform.capitalize()}AppSecret" for platform in registry()}
    for function in FUNCTIONS:
        properties = resources[function]["Properties"]
        variables = properties["Environment"]["Variables"]
        assert not any(value == {"Ref": name} for value in variables.values() for name in no_echo)
        assert properties["KmsKeyArn"] == {"Fn::GetAtt": ["TokenKey", "Arn"]}
    api = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    for platform in registry():
        stored = resources[f"{platform.capitalize()}AppSecretStored"]
        assert stored["Type"] == "AWS::SecretsManager::Secret"
        assert stored["Properties"]["SecretString"] == {"Ref": f"{platform.capitalize()}AppSecret"}
        assert api[f"SHOPHOOK_{platform.upper()}_APP_SECRET_NAME"] == {
            "Ref": f"{platform.capitalize()}AppSecretStored"
        }
    (statement,) = resources["AppSecretsUse"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]


def test_the_api_is_throttled_traced_and_logged_and_every_function_has_its_concurrency():
    """Issue 18: nothing was rate limited (checkov CKV_AWS_115, CKV_AWS_76)."""
    resources = template()["Resources"]
    api = resources["RestAPI"]["Properties"]
    (throttle,) = api["MethodSettings"]
    assert (throttle["ResourcePath"], throttle["HttpMethod"]) == ("/*", "*")
    assert throttle["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
    assert throttle["ThrottlingBurstLimit"] == {"Ref": "ApiBurstLimit"}
    assert api["TracingEnabled"] is True
    assert api["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    assert "querystring" not in api["AccessLogSetting"]["Format"].lower()
    assert resources["ApiAccessLogs"]["Properties"]["RetentionInDays"] > 0
    reserved = {
        function: resources[function]["Properties"]["ReservedConcurrentExecutions"]
        for function in FUNCTIONS
    }
    assert reserved["APIHandler"] == {"Ref": "ApiConcurrency"}
    for consumer in ("DeliverOutbox", "DeliverWebhooks"):
        (source,) = resources[consumer]["Properties"]["Events"].values()
        # The poller never runs more copies than the function may: no throttled receive.
        assert source["Properties"]["ScalingConfig"]["MaximumConcurrency"] == reserved[consumer]


def test_checkov_skips_only_what_is_explained():
    """Every skipped check in infra/checkov.yaml has its reason right above it."""
    lines = (ROOT / "infra" / "checkov.yaml").read_text(encoding="utf-8").splitlines()
    skipped = [n for n, line in enumerate(lines) if line.strip().startswith("- CKV")]
    assert skipped
    for number in skipped:
        assert lines[number - 1].strip().startswith("#"), lines[number]
