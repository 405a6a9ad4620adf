"""`shophook local`: the whole stack on one machine with nothing but Python.

An embedded moto server stands in for DynamoDB, `chalice local` serves the API,
and demo shops and a demo integrator key are seeded. Runs in the foreground
and stops everything it started on SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from chalicelib.settings import (
    KMS_KEY_VARIABLE,
    LOOPBACK_WEBHOOKS_VARIABLE,
    PUBLIC_URL_VARIABLE,
    platform_variable,
    reload,
)
from shophook.stage import PROJECT_DIR, apply_stage
from simulator.platforms import registry as simulated
from simulator.scenarios import DEMO_CREDENTIALS, DEMO_SHOPS, TAOBAO_SHOP
from simulator.server import issue_session, serve, shophook_settings

STAGE = "local"
# The local stack's token key, by a name the operator CLI can find it by.
TOKEN_KEY_ALIAS = "alias/shophook-local-tokens"  # noqa: S105 - a KMS alias, not a secret
STARTUP_TIMEOUT_SECONDS = 60
SCHEDULE_SECONDS_VARIABLE = "SHOPHOOK_LOCAL_SCHEDULE_SECONDS"


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((host, port)) != 0


def prepare_environment(moto_url: str) -> None:
    """Point every AWS client at moto with throwaway credentials: the local stack
    never reaches a real AWS account, whatever the caller's environment holds."""
    os.environ.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    apply_stage(STAGE)
    reload()


def use_simulated_platforms(simulator_url: str) -> None:
    """The demo apps, and the simulator's OAuth and API URLs, for any of these
    variables not set already; the message channels of the platforms that have
    one are drained."""
    for platform, credentials in DEMO_CREDENTIALS.items():
        os.environ.setdefault(platform_variable(platform, "app_key"), credentials.app_key)
        os.environ.setdefault(platform_variable(platform, "app_secret"), credentials.app_secret)
        if simulated()[platform].channel is not None:
            os.environ.setdefault(platform_variable(platform, "tmc"), "1")
    for name, value in shophook_settings(simulator_url).items():
        os.environ.setdefault(name, value)
    reload()


def attach_operator_cli() -> None:
    """`shophook --stage local ...` acting for a shop of the running stack (a pull):
    the simulated platforms at their default port, and the stack's token key, found
    by its alias (the CLI's AWS environment points at the stack's moto)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from shophook.cli import DEFAULT_SIMULATOR_PORT

    use_simulated_platforms(f"http://127.0.0.1:{DEFAULT_SIMULATOR_PORT}")
    if os.environ.get(KMS_KEY_VARIABLE):
        return
    try:
        key = boto3.client("kms").describe_key(KeyId=TOKEN_KEY_ALIAS)["KeyMetadata"]["Arn"]
    except (BotoCoreError, ClientError):
        return  # no stack running: the commands that need the key say so
    os.environ[KMS_KEY_VARIABLE] = key
    reload()


def seed(now: datetime, simulator_url: str) -> str:
    """Tables, queues, the token key, demo shops (with sessions the simulator
    honours, so actions reach it) and the demo key; returns the demo key."""
    import boto3

    from chalicelib.platforms.oauth import tokens_from
    from chalicelib.service import keys, shops
    from chalicelib.store.queues import create_queues
    from chalicelib.store.records import create_tables

    kms = boto3.client("kms")
    key = kms.create_key(Description="ShopHook local: seals shop tokens")
    kms.create_alias(AliasName=TOKEN_KEY_ALIAS, TargetKeyId=key["KeyMetadata"]["KeyId"])
    os.environ[KMS_KEY_VARIABLE] = key["KeyMetadata"]["Arn"]
    create_tables()
    os.environ.update(create_queues())
    reload()
    for shop_id, name in DEMO_SHOPS.items():
        session = issue_session(simulator_url, shop_id.partition(":")[2], name)
        shops.connect(shop_id, name, now, tokens_from(session, now))
    _, api_key = keys.create_key(
        "demo integrator", DEMO_SHOPS, now, key=os.environ.get("SHOPHOOK_DEMO_API_KEY")
    )
    return api_key


class NotAnsweringError(RuntimeError):
    """A local server exited, or did not answer in time."""


def wait_until_answering(url: str, server: subprocess.Popen, seconds: float) -> None:
    """Poll `url` until it answers; a busy machine can take seconds to start a
    server, so any network error is retried until `server` exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise NotAnsweringError(f"{url}: the server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback URL
                return
        except OSError:
            time.sleep(0.2)
    raise NotAnsweringError(f"{url} did not answer within {seconds:g} s")


def banner(api_url: str, moto_url: str, simulator_url: str, api_key: str) -> str:
    shop = TAOBAO_SHOP  # the Taobao-style scenarios' shop
    subscription = json.dumps(
        {
            "url": "http://127.0.0.1:9000/hook",
            "event_types": ["after_sale.updated"],
            "shops": [shop],
        }
    )
    sellers = "\n".join(
        f"  {shop_id:<22} seller id {shop_id.partition(':')[2]}" for shop_id in DEMO_SHOPS
    )
    return f"""
ShopHook local stack is ready.
  API            {api_url}
  seller console {api_url}/console
  AWS (moto)     {moto_url}   (DynamoDB, SQS, KMS)
  simulator      {simulator_url}   (every platform's OAuth and API)
  demo shops     {", ".join(DEMO_SHOPS)}
  demo API key   {api_key}

Try it from another terminal:
  .venv/bin/shophook simulate taobao-order --url {api_url}
  .venv/bin/shophook simulate taobao-order --via tmc --order 3010002 --url {api_url}
    (through the Taobao-style message channel, TMC: thin messages on the simulator,
    drained by the schedule every minute, the full trade read behind each)
  curl -s -H 'Authorization: Bearer {api_key}' {api_url}/shops/{shop}/orders/3010001

Subscribe an endpoint of yours (loopback http is allowed locally), then agree a refund
(after `shophook simulate awaiting-refund`); the simulator's API receives the call:
  curl -s -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\
    -d '{subscription}' \\
    {api_url}/subscriptions
  curl -s -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\
    -d '{{"action": "agree_refund"}}' {api_url}/shops/{shop}/after-sales/R3060001/actions

Seller console: open {api_url}/console in a browser and sign in with a marketplace;
on the simulated marketplace's page, give the seller id of a demo shop:
{sellers}
(any other seller id connects a new, empty shop). `shophook simulate awaiting-refund`
puts a refund there for you to agree.

Connect a new simulated shop: open {api_url}/oauth/taobao/connect in a browser.

Operator CLI against this stack:
  AWS_ENDPOINT_URL={moto_url} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \\
    .venv/bin/shophook --stage local shops list

Ctrl-C stops everything.
"""


def _drive_schedules(stop: threading.Event, server: subprocess.Popen) -> None:
    """Run the app's schedules every SHOPHOOK_LOCAL_SCHEDULE_SECONDS until stopped."""
    import app as app_module
    from shophook.driver import run_schedules

    interval = float(os.environ.get(SCHEDULE_SECONDS_VARIABLE, "60"))
    while not stop.wait(interval) and server.poll() is None:
        try:
            results = run_schedules(app_module, datetime.now(UTC))
        except Exception:  # a failing schedule must not take the local stack down
            logging.getLogger("shophook.local").exception("a scheduled function failed")
            continue
        print(f"schedules ran: {results}", flush=True)


POLLERS_PER_QUEUE = 4


def run(host: str, port: int, moto_port: int, simulator_port: int) -> int:
    ports = (("--port", port), ("--moto-port", moto_port), ("--simulator-port", simulator_port))
    for label, wanted in ports:
        if not _port_is_free(host, wanted):
            raise SystemExit(f"port {wanted} on {host} is in use; choose another with {label}")
    from moto.server import ThreadedMotoServer

    moto_url = f"http://{host}:{moto_port}"
    api_url = f"http://{host}:{port}"
    simulator_url = f"http://{host}:{simulator_port}"
    prepare_environment(moto_url)
    os.environ.setdefault(PUBLIC_URL_VARIABLE, api_url)
    use_simulated_platforms(simulator_url)
    # Integrators on this machine listen on loopback http.
    os.environ.setdefault(LOOPBACK_WEBHOOKS_VARIABLE, "1")
    simulator = serve(host, simulator_port, DEMO_CREDENTIALS)
    # moto answers every "does this table exist?" with a logged 400: keep the console readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address=host, port=moto_port, verbose=False)
    moto.start()
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    try:
        api_key = seed(datetime.now(UTC), simulator_url)
        chalice = Path(sys.executable).parent / "chalice"
        server = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                str(chalice),
                "local",
                "--host",
                host,
                "--port",
                str(port),
                "--stage",
                STAGE,
                "--no-autoreload",
            ],
            cwd=PROJECT_DIR,
            env=os.environ.copy(),
        )
        try:
            try:
                wait_until_answering(f"{api_url}/health", server, STARTUP_TIMEOUT_SECONDS)
            except NotAnsweringError as failed:
                raise SystemExit(f"chalice local did not start: {failed}") from None
            print(banner(api_url, moto_url, simulator_url, api_key), flush=True)
            import app as app_module
            from shophook.driver import start_pollers

            # A few pollers per queue: a slow platform or subscriber holds up
            # only its own message group.
            pollers = start_pollers(app_module, stop, POLLERS_PER_QUEUE)
            _drive_schedules(stop, server)
            stop.set()
            for poller in pollers:
                poller.join(timeout=15)
        finally:
            server.terminate()
            server.wait(timeout=10)
    finally:
        simulator.shutdown()
        moto.stop()
    return 0
