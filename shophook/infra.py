"""infra/template.json: the CloudFormation that `chalice package --merge-template`
adds to the functions. The tables are generated from the PynamoDB models, so
the deployed keys and indexes can never drift from the code; alarms and the
dashboard watch the metrics the code emits."""

from __future__ import annotations

import json
from typing import Any

from pynamodb.attributes import TTLAttribute
from pynamodb.models import Model

from chalicelib.platforms import registry
from chalicelib.settings import (
    KMS_KEY_VARIABLE,
    PUBLIC_URL_VARIABLE,
    TABLE_PREFIX_VARIABLE,
    platform_variable,
    settings,
)
from chalicelib.store.entities import STREAMED
from chalicelib.store.queues import (
    ALL_QUEUES,
    RETENTION_SECONDS,
    VISIBILITY_SECONDS,
    Queue,
)
from chalicelib.store.records import (
    ALL_RECORDS,
    CaseRecord,
    DeadlineRecord,
    EventLogRecord,
    OrderRecord,
)
from shophook.driver import STREAM_BATCH
from shophook.stage import deployed_environment

# What the deployed functions emit under (not whatever this shell has set).
NAMESPACE = deployed_environment()["POWERTOOLS_METRICS_NAMESPACE"]
SERVICE = deployed_environment()["POWERTOOLS_SERVICE_NAME"]
FUNCTIONS = {
    "APIHandler": "API",
    "SweepDeadlines": "deadline sweeper",
    "RefreshTokens": "token refresher",
    "RequeueOutbox": "outbox requeuer",
    "ReconcileShops": "reconciliation scheduler",
    "DrainChannels": "message channel drain",
    "DeliverOutbox": "action sender, event fan-out and reconciliation puller",
    "DeliverWebhooks": "integrator webhook sender",
    "TellChanges": "change teller (events and actions from the orders' and cases' streams)",
}
# The IAM roles chalice generates for them.
ROLES = tuple(name.replace("APIHandler", "ApiHandler") for name in FUNCTIONS)
# The SQS consumers: they report failures per record.
CONSUMERS = ("DeliverOutbox", "DeliverWebhooks")
# The streams' consumer, and how far behind the stream it may fall before ops hear.
STREAM_CONSUMER = "TellChanges"
STREAM_LAG_ALARM_MS = 5 * 60 * 1000
# Functions that call the platforms' APIs (OAuth included).
PLATFORM_CALLERS = ("APIHandler", "RefreshTokens", "DeliverOutbox", "DrainChannels")
# A schedule needs one run at a time; two, so a late run never throttles the next.
SCHEDULE_CONCURRENCY = 2
# What API Gateway's access log records per request: who, which route, how it
# went. Never a query string (a connect callback carries its code there) or a header.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "method": "$context.httpMethod",
    "resource": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
}
API_NAME = "shophook"
FIVE_MINUTES = 300
# Tables on the webhook path: their throttling is what makes platforms redeliver.
HOT_TABLES = (OrderRecord, CaseRecord, EventLogRecord, DeadlineRecord)


def _logical_id(record: type[Model]) -> str:
    return record.__name__.replace("Record", "") + "Table"


def _table_suffix(record: type[Model]) -> str:
    return record.Meta.table_name[len(settings().table_prefix) :]


def _key_schema(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    # CloudFormation wants the HASH key first.
    return sorted(keys, key=lambda key: key["KeyType"] != "HASH")


def table(record: type[Model]) -> dict[str, Any]:
    schema = record._get_schema()
    properties: dict[str, Any] = {
        "TableName": {"Fn::Sub": "${TablePrefix}" + _table_suffix(record)},
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": schema["attribute_definitions"],
        "KeySchema": _key_schema(schema["key_schema"]),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    if hasattr(record.Meta, "stream_view_type"):
        properties["StreamSpecification"] = {"StreamViewType": record.Meta.stream_view_type}
    if schema["global_secondary_indexes"]:
        properties["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index["index_name"],
                "KeySchema": _key_schema(index["key_schema"]),
                "Projection": index["projection"],
            }
            for index in schema["global_secondary_indexes"]
        ]
    ttl = [
        name
        for name, attribute in record.get_attributes().items()
        if isinstance(attribute, TTLAttribute)
    ]
    if ttl:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl[0], "Enabled": True}
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def _queue_id(queue: Queue, dead: bool = False) -> str:
    return queue.name.capitalize() + ("DeadLetterQueue" if dead else "Queue")


def queue_resources(queue: Queue) -> dict[str, dict[str, Any]]:
    """A FIFO queue and its DLQ; the redrive count is the retry budget the
    consumer counts against (store/queues.py)."""
    fifo = {
        "FifoQueue": True,
        "MessageRetentionPeriod": RETENTION_SECONDS,
        "SqsManagedSseEnabled": True,
    }
    return {
        _queue_id(queue, dead=True): {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                **fifo,
                "QueueName": {"Fn::Sub": "${TablePrefix}" + queue.dead_letter_name(prefix="")},
            },
        },
        _queue_id(queue): {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                **fifo,
                "QueueName": {"Fn::Sub": "${TablePrefix}" + queue.queue_name(prefix="")},
                "VisibilityTimeout": VISIBILITY_SECONDS,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [_queue_id(queue, dead=True), "Arn"]},
                    "maxReceiveCount": queue.retry.attempts,
                },
            },
        },
    }


def _metric(
    namespace: str, name: str, dimensions: dict[str, Any], stat: str = "Sum"
) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": key, "Value": value} for key, value in dimensions.items()],
        },
        "Period": FIVE_MINUTES,
        "Stat": stat,
    }


def _channels() -> list[str]:
    """The platforms with a message channel (platforms.md 1.4)."""
    return sorted(name for name, platform in registry().items() if platform.channel is not None)


def _math_alarm(
    description: str,
    expression: str,
    metrics: dict[str, dict[str, Any]],
    threshold: float,
    periods: int = 1,
) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "ComparisonOperator": "GreaterThanThreshold",
            "EvaluationPeriods": periods,
            "Threshold": threshold,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
            "OKActions": [{"Ref": "AlarmTopic"}],
            "Metrics": [
                {"Id": "total", "Expression": expression, "ReturnData": True},
                *(
                    {"Id": metric_id, "MetricStat": stat, "ReturnData": False}
                    for metric_id, stat in metrics.items()
                ),
            ],
        },
    }


def alarms() -> dict[str, dict[str, Any]]:
    platforms = sorted(registry())
    ours = {"service": SERVICE}
    api = {"ApiName": API_NAME, "Stage": "api"}
    found: dict[str, dict[str, Any]] = {
        "WebhookServerErrorRateAlarm": _math_alarm(
            "More than 1% of API requests answered 5xx in 5 minutes (platforms will redeliver)",
            "100 * errors / MAX([requests, 1])",
            {
                "errors": _metric("AWS/ApiGateway", "5XXError", api),
                "requests": _metric("AWS/ApiGateway", "Count", api),
            },
            1,
        ),
        "WebhookRejectionSpikeAlarm": _math_alarm(
            "More than 50 webhooks refused (signature, app key, timestamp) in 5 minutes",
            " + ".join(f"FILL(rejected{i}, 0)" for i in range(len(platforms))),
            {
                f"rejected{i}": _metric(
                    NAMESPACE, "WebhookRejected", {"platform": platform, **ours}
                )
                for i, platform in enumerate(platforms)
            },
            50,
        ),
        "DeadlinesBreachedAlarm": _math_alarm(
            "A seller, platform or legal deadline was breached",
            "FILL(breached, 0)",
            {"breached": _metric(NAMESPACE, "DeadlinesBreached", ours)},
            0,
        ),
    }
    # One refusal is a rate limit waited out; refusals in three 5-minute periods in
    # a row mean pulls keep failing, and webhooks the platforms dropped stay missed.
    found["ReconcileErrorsAlarm"] = _math_alarm(
        "Reconciliation pulls ended refused or on an unreadable record in 15 minutes running "
        "(missed webhooks are not being healed): see the pull rows, `shophook dlq list`",
        " + ".join(f"FILL(errors{i}, 0)" for i in range(len(platforms))),
        {
            f"errors{i}": _metric(NAMESPACE, "ReconcileErrors", {"platform": platform, **ours})
            for i, platform in enumerate(platforms)
        },
        0,
        periods=3,
    )
    # The drain runs every minute and says each time whether it failed; a crash
    # is a failed run too.
    for platform in _channels():
        failed = _metric(NAMESPACE, "TmcRunFailed", {"platform": platform, **ours}, "Maximum")
        crashed = _metric("AWS/Lambda", "Errors", {"FunctionName": {"Ref": "DrainChannels"}})
        found[f"{platform.capitalize()}ChannelFailingAlarm"] = _math_alarm(
            f"The {platform} message channel drain failed three runs in a row (messages wait "
            "on the platform): see the `channel run failed` log lines",
            "MAX([FILL(failed, 0), FILL(crashed, 0)])",
            {
                "failed": {**failed, "Period": 60},
                "crashed": {**crashed, "Period": 60},
            },
            0,
            periods=3,
        )
    for function, label in FUNCTIONS.items():
        for metric in ("Errors", "Throttles"):
            found[f"{function}{metric}Alarm"] = _math_alarm(
                f"The {label} function reported {metric.lower()}",
                f"FILL({metric.lower()}, 0)",
                {
                    metric.lower(): _metric(
                        "AWS/Lambda", metric, {"FunctionName": {"Ref": function}}
                    )
                },
                0,
            )
    found["ChangesLagAlarm"] = _math_alarm(
        "The change teller is more than 5 minutes behind the orders' and cases' streams "
        "(events and actions wait; a record that keeps failing holds its shard): see the "
        "TellChanges function's errors and logs",
        "FILL(age, 0)",
        {
            "age": _metric(
                "AWS/Lambda",
                "IteratorAge",
                {"FunctionName": {"Ref": STREAM_CONSUMER}},
                stat="Maximum",
            )
        },
        STREAM_LAG_ALARM_MS,
    )
    for queue in ALL_QUEUES:
        found[f"{queue.name.capitalize()}DeadLetterDepthAlarm"] = _math_alarm(
            f"Work ran out of retries and waits in a DLQ ({queue.purpose}): "
            "`shophook dlq list`, then `shophook dlq replay`",
            "FILL(depth, 0)",
            {
                "depth": _metric(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    {"QueueName": {"Fn::GetAtt": [_queue_id(queue, dead=True), "QueueName"]}},
                    stat="Maximum",
                )
            },
            0,
        )
    for kind in ("Read", "Write"):
        found[f"DynamoDB{kind}ThrottlesAlarm"] = _math_alarm(
            f"DynamoDB throttled {kind.lower()}s on the webhook path",
            " + ".join(f"FILL(t{i}, 0)" for i in range(len(HOT_TABLES))),
            {
                f"t{i}": _metric(
                    "AWS/DynamoDB",
                    f"{kind}ThrottleEvents",
                    {"TableName": {"Ref": _logical_id(record)}},
                )
                for i, record in enumerate(HOT_TABLES)
            },
            0,
        )
    return found


def _widget(title: str, metrics: list[list[Any]], stat: str = "Sum") -> dict[str, Any]:
    return {
        "type": "metric",
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "metrics": metrics,
            "stat": stat,
            "period": 60,
            "region": "${AWS::Region}",
        },
    }


def _reading_widget(platforms: list[str]) -> dict[str, Any]:
    """What ShopHook reads from the platforms: reconciliation, and the detail calls
    that complete thin messages."""
    return _widget(
        "Reconciliation (pages pulled, records healed, runs refused) and thin-message fetches",
        [
            [NAMESPACE, name, "platform", platform, "service", SERVICE]
            for platform in platforms
            for name in ("ReconcilePages", "ReconcileHealed", "ReconcileErrors")
        ]
        + [
            [NAMESPACE, metric, "outcome", outcome, "service", SERVICE]
            for metric, done in (("ReconcileRuns", "pulled"), ("DetailFetches", "fetched"))
            for outcome in (done, "retrying", "failed", "dead_lettered")
        ],
    )


def _channel_widgets() -> list[dict[str, Any]]:
    return [
        _widget(
            f"Message channel: {platform} (consumed, confirmed, redelivered, failed runs)",
            [
                [NAMESPACE, name, "platform", platform, "service", SERVICE]
                for name in ("TmcConsumed", "TmcConfirmed", "TmcRedelivered", "TmcRunFailed")
            ],
        )
        for platform in _channels()
    ]


def dashboard() -> dict[str, Any]:
    platforms = sorted(registry())
    flow = [
        "WebhookReceived",
        "WebhookApplied",
        "WebhookThin",
        "WebhookDuplicate",
        "WebhookStale",
        "WebhookForUnconnectedShop",
        "WebhookQuarantined",
        "WebhookRejected",
        "WebhookStorageFailure",
    ]
    widgets = [
        _widget(
            f"Webhooks: {platform}",
            [[NAMESPACE, name, "platform", platform, "service", SERVICE] for name in flow],
        )
        for platform in platforms
    ]
    widgets += [
        _widget(
            "Ingest latency (ms), p50 and p99",
            [
                [
                    NAMESPACE,
                    "IngestLatency",
                    "platform",
                    platform,
                    "service",
                    SERVICE,
                    {"stat": stat},
                ]
                for platform in platforms
                for stat in ("p50", "p99")
            ],
            "p99",
        ),
        _widget(
            "Deadlines",
            [
                [NAMESPACE, name, "service", SERVICE]
                for name in ("DeadlinesDue", "DeadlineWarnings", "DeadlinesBreached")
            ],
        ),
        _widget(
            "Outbound: actions and integrator deliveries, by outcome",
            [
                [NAMESPACE, metric, "outcome", outcome, "service", SERVICE]
                for metric in ("Actions", "Deliveries")
                for outcome in ("sent", "delivered", "retrying", "failed", "dead_lettered")
                if (metric, outcome) not in (("Actions", "delivered"), ("Deliveries", "sent"))
            ]
            + [
                [NAMESPACE, name, "service", SERVICE]
                for name in ("DeliveriesCreated", "OutboxRequeued", "OutboxAlreadyDone")
            ],
        ),
        _reading_widget(platforms),
        *_channel_widgets(),
        _widget(
            "Outbound latency (ms), p50 and p99",
            [
                [NAMESPACE, name, "service", SERVICE, {"stat": stat}]
                for name in ("ActionLatency", "DeliveryLatency")
                for stat in ("p50", "p99")
            ],
            "p99",
        ),
        _widget(
            "Queues: waiting, and dead-lettered",
            [
                [
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    "${TablePrefix}" + name,
                ]
                for queue in ALL_QUEUES
                for name in (queue.queue_name(prefix=""), queue.dead_letter_name(prefix=""))
            ],
            "Maximum",
        ),
        _widget(
            "Functions",
            [
                ["AWS/Lambda", metric, "FunctionName", "${" + function + "}"]
                for function in FUNCTIONS
                for metric in ("Invocations", "Errors", "Throttles")
            ],
        ),
        _widget(
            "API answers",
            [
                ["AWS/ApiGateway", metric, "ApiName", API_NAME, "Stage", "api"]
                for metric in ("Count", "4XXError", "5XXError")
            ],
        ),
    ]
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": {"Fn::Sub": "${TablePrefix}flow"},
            "DashboardBody": {"Fn::Sub": json.dumps({"widgets": widgets})},
        },
    }


def template() -> dict[str, Any]:
    resources: dict[str, Any] = {_logical_id(record): table(record) for record in ALL_RECORDS}
    resources["AlarmTopic"] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"KmsMasterKeyId": "alias/aws/sns"},
    }
    resources["AlarmEmailSubscription"] = {
        "Type": "AWS::SNS::Subscription",
        "Condition": "HasAlarmEmail",
        "Properties": {
            "TopicArn": {"Ref": "AlarmTopic"},
            "Protocol": "email",
            "Endpoint": {"Ref": "AlarmEmail"},
        },
    }
    for queue in ALL_QUEUES:
        resources |= queue_resources(queue)
    resources |= alarms()
    resources["FlowDashboard"] = dashboard()
    resources |= _token_key() | _queue_use() | _app_secrets() | _functions() | _api()
    return {
        "Parameters": _parameters(),
        "Conditions": {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}},
        "Resources": resources,
        "Outputs": {
            "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
            "TokenKeyArn": {"Value": {"Fn::GetAtt": ["TokenKey", "Arn"]}},
            **{
                f"{_queue_id(queue, dead)}Url": {"Value": {"Ref": _queue_id(queue, dead)}}
                for queue in ALL_QUEUES
                for dead in (False, True)
            },
        },
    }


def _token_key() -> dict[str, Any]:
    resources: dict[str, Any] = {}
    # Shop tokens are sealed under this key (store/vault.py); only the functions
    # may use it, and only to make and open data keys.
    resources["TokenKey"] = {
        "Type": "AWS::KMS::Key",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Description": "ShopHook: seals shops' OAuth tokens, subscription secrets, "
            "the apps' secrets and the functions' environment",
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:root"}},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ],
            },
        },
    }
    resources["TokenKeyUse"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "shophook-token-key",
            "Roles": [{"Ref": f"{function}Role"} for function in ROLES],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                        "Resource": {"Fn::GetAtt": ["TokenKey", "Arn"]},
                    }
                ],
            },
        },
    }
    return resources


def _queue_use() -> dict[str, Any]:
    resources: dict[str, Any] = {}
    queue_arns = [
        {"Fn::GetAtt": [_queue_id(queue, dead), "Arn"]}
        for queue in ALL_QUEUES
        for dead in (False, True)
    ]
    resources["QueueUse"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "shophook-queues",
            "Roles": [{"Ref": f"{function}Role"} for function in ROLES],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "sqs:ChangeMessageVisibility",
                            "sqs:DeleteMessage",
                            "sqs:GetQueueAttributes",
                            "sqs:GetQueueUrl",
                            "sqs:ReceiveMessage",
                            "sqs:SendMessage",
                        ],
                        "Resource": queue_arns,
                    }
                ],
            },
        },
    }
    return resources


def _functions() -> dict[str, Any]:
    resources: dict[str, Any] = {}
    # Deep-merged into the functions chalice generates: the table prefix comes
    # from the same parameter as the tables, tracing is on, and the functions
    # that call the platforms get the apps' keys and the names of the secrets in
    # Secrets Manager (never a secret itself: the environment is readable with
    # lambda:GetFunctionConfiguration).
    credentials = {
        platform_variable(platform, part): {"Ref": logical_id}
        for platform in sorted(registry())
        for part, logical_id in (
            ("app_key", _credential(platform, "key")),
            ("app_secret_name", _app_secret_id(platform)),
        )
    }
    for function in FUNCTIONS:
        variables: dict[str, Any] = {
            TABLE_PREFIX_VARIABLE: {"Ref": "TablePrefix"},
            KMS_KEY_VARIABLE: {"Fn::GetAtt": ["TokenKey", "Arn"]},
            **{queue.url_variable: {"Ref": _queue_id(queue)} for queue in ALL_QUEUES},
        }
        if function == "APIHandler":
            # OAuth redirect URIs and the connect cookie's path are built on it.
            variables[PUBLIC_URL_VARIABLE] = {"Ref": "PublicUrl"}
        if function in PLATFORM_CALLERS:
            variables |= credentials | {
                platform_variable(platform, part): {"Ref": f"{platform.capitalize()}{suffix}"}
                for platform in sorted(registry())
                for part, suffix in (("oauth_url", "OAuthUrl"), ("api_url", "ApiUrl"))
            }
            # Connects subscribe, disconnects cancel, the drain runs: all when it is on.
            variables |= {
                platform_variable(platform, "tmc"): {"Ref": f"{platform.capitalize()}Tmc"}
                for platform in _channels()
            }
        properties: dict[str, Any] = {
            "Tracing": "Active",
            "Environment": {"Variables": variables},
            # Names and URLs only, but sealed under the stack's key all the same.
            "KmsKeyArn": {"Fn::GetAtt": ["TokenKey", "Arn"]},
        }
        if function in CONSUMERS:
            # Chalice names the queue by ARN (the Ref to its URL above orders the
            # creation); the function reports failed records, not a failed invocation.
            # The poller never invokes more copies than the function may run: a
            # throttled message would count a receive towards the DLQ.
            properties["Events"] = {
                f"{function}SqsEventSource": {
                    "Properties": {
                        "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        "ScalingConfig": {"MaximumConcurrency": {"Ref": "ConsumerConcurrency"}},
                    }
                }
            }
        if function == STREAM_CONSUMER:
            # Every committed write, in order per item; a failed record is read
            # again, never skipped, for as long as the stream keeps it (24 hours),
            # while the lag alarm says so.
            properties["Events"] = {
                f"{_logical_id(record)}Stream": {
                    "Type": "DynamoDB",
                    "Properties": {
                        "Stream": {"Fn::GetAtt": [_logical_id(record), "StreamArn"]},
                        "StartingPosition": "TRIM_HORIZON",
                        "BatchSize": STREAM_BATCH,
                        "MaximumRetryAttempts": -1,
                        "MaximumRecordAgeInSeconds": -1,
                        "BisectBatchOnFunctionError": True,
                        "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    },
                }
                for record in STREAMED.values()
            }
        # Each function has its share of the account's concurrency, so none can
        # starve the others (or the account's other functions).
        properties["ReservedConcurrentExecutions"] = (
            {"Ref": "ApiConcurrency"}
            if function == "APIHandler"
            else {"Ref": "ConsumerConcurrency"}
            if function in (*CONSUMERS, STREAM_CONSUMER)
            else SCHEDULE_CONCURRENCY
        )
        resources[function] = {"Properties": properties}
        if function != STREAM_CONSUMER:
            # Its new code writes no outbox row for what a change tells: it must
            # not run before the tables stream their writes (records then wait
            # for the streams' consumer, which the streams' ARNs order already).
            resources[function]["DependsOn"] = [_logical_id(record) for record in STREAMED.values()]
    return resources


def _api() -> dict[str, Any]:
    """Deep-merged into the API chalice generates: stage-wide throttling (every
    route, webhooks and the unauthenticated connect pages included), X-Ray
    tracing, and an access log."""
    return {
        "RestAPI": {
            # The account's logging role must be in place before the stage logs.
            "DependsOn": "ApiGatewayAccount",
            "Properties": {
                "TracingEnabled": True,
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": {"Ref": "ApiRateLimit"},
                        "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"},
                    }
                ],
                "AccessLogSetting": {
                    "DestinationArn": {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]},
                    "Format": json.dumps(ACCESS_LOG_FORMAT),
                },
            },
        },
        "ApiAccessLogs": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "LogGroupName": {"Fn::Sub": "/shophook/${TablePrefix}api-access"},
                "RetentionInDays": 90,
            },
        },
        # API Gateway writes logs through one role per account and region. Kept
        # when the stack goes, since other APIs of the account may log through it.
        "ApiGatewayLogsRole": {
            "Type": "AWS::IAM::Role",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "ManagedPolicyArns": [
                    {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs"
                    }
                ],
            },
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]}},
        },
    }


def _parameters() -> dict[str, Any]:
    return {
        **{
            _credential(platform, part): {
                "Type": "String",
                "NoEcho": part == "secret",
                "Description": f"the {platform} app's {part}"
                + (" (kept in Secrets Manager)" if part == "secret" else ""),
            }
            for platform in sorted(registry())
            for part in ("key", "secret")
        },
        "TablePrefix": {
            "Type": "String",
            "Default": "shophook-dev-",
            "AllowedPattern": "[a-z0-9-]+-",
            "Description": "prefix of every table name: shophook-<stage>-",
        },
        **{
            f"{platform.capitalize()}{suffix}": {
                "Type": "String",
                "Description": f"the {platform} platform's {what}",
            }
            for platform in sorted(registry())
            for suffix, what in (("OAuthUrl", "OAuth base URL"), ("ApiUrl", "API endpoint"))
        },
        **{
            f"{platform.capitalize()}Tmc": {
                "Type": "String",
                "Default": "0",
                "AllowedValues": ["0", "1"],
                "Description": f"1: drain the {platform} platform's message channel every "
                "minute and subscribe shops to it on connect "
                f"({platform_variable(platform, 'tmc')})",
            }
            for platform in _channels()
        },
        "PublicUrl": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "(https://[^/?#]+(/[^?#]*)?)?",
            "Description": "where browsers and platforms reach the API, as "
            f"{PUBLIC_URL_VARIABLE}: the EndpointURL output (https://<api id>.execute-api."
            "<region>.amazonaws.com/api) or a custom domain; empty: shop connect is refused",
        },
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "Description": "where alarms are mailed (empty: subscribe to AlarmTopic yourself)",
        },
        "ApiRateLimit": {
            "Type": "Number",
            "Default": 100,
            "MinValue": 1,
            "Description": "requests a second the API stage takes, every route together; "
            "past it (and the burst) API Gateway answers 429",
        },
        "ApiBurstLimit": {
            "Type": "Number",
            "Default": 200,
            "MinValue": 1,
            "Description": "requests the API stage takes at once above the rate",
        },
        "ApiConcurrency": {
            "Type": "Number",
            "Default": 50,
            "MinValue": 1,
            "Description": "the API function's reserved concurrency: copies at once, at most",
        },
        "ConsumerConcurrency": {
            "Type": "Number",
            "Default": 10,
            "MinValue": 2,
            "Description": "reserved concurrency of each queue consumer (and its event "
            "source's maximum concurrency) and of the streams' consumer",
        },
    }


def _credential(platform: str, part: str) -> str:
    return f"{platform.capitalize()}App{part.capitalize()}"


def _app_secret_id(platform: str) -> str:
    return f"{platform.capitalize()}AppSecretStored"


def _app_secrets() -> dict[str, Any]:
    """Each app's secret in Secrets Manager, made from its NoEcho parameter and
    sealed under the stack's key; only the platform callers may read them."""
    resources: dict[str, Any] = {
        _app_secret_id(platform): {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Name": {"Fn::Sub": "${TablePrefix}" + f"{platform}-app-secret"},
                "Description": f"ShopHook: the {platform} app's secret",
                "SecretString": {"Ref": _credential(platform, "secret")},
                "KmsKeyId": {"Fn::GetAtt": ["TokenKey", "Arn"]},
            },
        }
        for platform in sorted(registry())
    }
    resources["AppSecretsUse"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "shophook-app-secrets",
            "Roles": [
                {"Ref": f"{role}Role"}
                for function, role in zip(FUNCTIONS, ROLES, strict=True)
                if function in PLATFORM_CALLERS
            ],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["secretsmanager:GetSecretValue"],
                        "Resource": [
                            {"Ref": _app_secret_id(platform)} for platform in sorted(registry())
                        ],
                    }
                ],
            },
        },
    }
    return resources


def render() -> str:
    return json.dumps(template(), indent=2, ensure_ascii=False) + "\n"
