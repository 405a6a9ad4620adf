"""One moto server (its own process) for a benchmark, and what both handlers need on it.
Call `start()` before anything imports the app: table names are fixed then."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from shophook.local import wait_until_answering
from simulator.scenarios import DEMO_CREDENTIALS, DEMO_SHOPS
from simulator.webhooks import SignedWebhook


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# How long the moto server may take to answer: it imports moto whole, which a
# busy machine has been seen to take more than 10 s over.
STARTUP_SECONDS = 120


@cache
def start(server_command: tuple[str, ...] = ()) -> str:
    """The moto server's URL, with ShopHook's tables, queues, key and demo shops,
    and the baseline's tables, created on it. `server_command` replaces
    `moto_server` (it takes the same -H/-p arguments)."""
    port = free_port()
    command = server_command or [str(Path(sys.executable).parent / "moto_server")]
    # Its own process, like a real endpoint: the server's work is not the handler's.
    server = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(server.terminate)
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{url}/moto-api/", server, STARTUP_SECONDS)
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        SHOPHOOK_TABLE_PREFIX="bench-",
        BASELINE_TABLE_PREFIX="baseline-",
        # Neither handler prints metric or info lines here: handler work only.
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    for platform, credentials in DEMO_CREDENTIALS.items():
        os.environ[f"SHOPHOOK_{platform.upper()}_APP_KEY"] = credentials.app_key
        os.environ[f"SHOPHOOK_{platform.upper()}_APP_SECRET"] = credentials.app_secret
    import boto3

    from bench.baseline import handler as baseline
    from chalicelib.settings import KMS_KEY_VARIABLE, reload
    from chalicelib.store.queues import create_queues
    from chalicelib.store.records import create_tables

    os.environ[KMS_KEY_VARIABLE] = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
    os.environ.update(create_queues())
    reload()
    create_tables()
    seed_shops()
    baseline.create_tables()
    return url


def seed_shops() -> None:
    from datetime import UTC, datetime

    from chalicelib.service import shops

    for shop_id, name in DEMO_SHOPS.items():
        shops.connect(shop_id, name, datetime.now(UTC))


def empty_tables() -> None:
    """Both handlers' tables, dropped and made again. moto copies a whole table
    for every transaction (to roll back), so its transactions slow down as a
    table grows; real DynamoDB does not. Runs that compare speed start empty."""
    import boto3

    from bench.baseline import handler as baseline
    from chalicelib.store.records import ALL_RECORDS, create_tables
    from shophook.driver import forget_stream_positions

    client = boto3.client("dynamodb")
    for record in ALL_RECORDS:
        record.delete_table()
    for name in client.list_tables()["TableNames"]:
        if name.startswith(baseline.PREFIX):
            client.delete_table(TableName=name)
    create_tables()
    forget_stream_positions()
    seed_shops()
    baseline.create_tables()


@dataclass
class LambdaContext:
    """What Lambda passes as `context`, as much as the handlers read."""

    function_name: str = "bench"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:bench"
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def proxy_event(webhook: SignedWebhook) -> dict[str, Any]:
    """The API Gateway proxy event Lambda would hand either handler."""
    path, _, query = webhook.path.partition("?")
    params = parse_qs(query, keep_blank_values=True)
    platform = path.rsplit("/", 1)[1]
    return {
        "resource": "/webhooks/{platform}",
        "path": path,
        "httpMethod": "POST",
        "headers": dict(webhook.headers),
        "multiValueHeaders": {name: [value] for name, value in webhook.headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in params.items()} or None,
        "multiValueQueryStringParameters": params or None,
        "pathParameters": {"platform": platform},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/webhooks/{platform}",
            "httpMethod": "POST",
            "path": path,
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": webhook.body.decode(),
        "isBase64Encoded": False,
    }
