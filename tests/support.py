"""Test helpers: the moto-backed stack, AWS call counting and fault injection
through botocore's event hooks, and an independent signature oracle."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote_plus, urlencode, urlparse

import boto3
import pytest
import requests
import responses
import time_machine
from botocore.awsrequest import AWSResponse
from chalice.test import Client

from app import app
from chalicelib.domain.events import EVENT_TYPES
from chalicelib.domain.model import SHANGHAI, Inbound
from chalicelib.domain.state import apply, entity_of
from chalicelib.platforms import registry
from chalicelib.platforms.base import InboundRequest
from chalicelib.platforms.oauth import tokens_from
from chalicelib.platforms.wire import format_wire_time
from chalicelib.service import keys, shops
from chalicelib.settings import KMS_KEY_VARIABLE, reload, settings
from chalicelib.store import queues, vault
from chalicelib.store.records import (
    ALL_RECORDS,
    OutboxRecord,
    SubscriptionRouteRecord,
    connection,
    create_tables,
)
from shophook.driver import forget_stream_positions
from simulator.scenarios import DEMO_CREDENTIALS, DEMO_SHOPS, Message
from simulator.scenarios import DOUDIAN_SHOP as DOUDIAN_SHOP  # the suite's demo shops
from simulator.scenarios import JD_SHOP as JD_SHOP
from simulator.scenarios import TAOBAO_SHOP as TAOBAO_SHOP
from simulator.server import issue_session
from simulator.webhooks import SignedWebhook

# Known-answer signatures of platforms.md (a copy of shared/docs/signature-vectors.json).
SIGNATURE_VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "signature-vectors.json").read_text()
)["vectors"]
# The JD-style approval of refund apply 77001 that the jd-api vector signs.
(JD_REPLY_VECTOR,) = [vector for vector in SIGNATURE_VECTORS if vector["kind"] == "jd-api"]
JD_REFUND_APPROVAL = json.loads(JD_REPLY_VECTOR["form"]["360buy_param_json"])

# A peer that hangs (the simulator's "timeout" fault, a hanging integrator) holds
# its answer past the timeout ShopHook is given in tests. The timeout is short so
# a hang costs little, and long enough that a real answer from a loopback peer on
# a busy machine is never taken for a hang: at 0.3 s, a reconciliation page missed
# it under two CPU hogs and the storm test saw a heal come late.
PEER_TIMEOUT_SECONDS = 2.0
PEER_HOLD_SECONDS = 2 * PEER_TIMEOUT_SECONDS

# The frozen "now" of the suite: 2026-11-23 10:00:05 in Shanghai.
NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=SHANGHAI)

# Every secret the suite hands out (app secrets, tokens, keys): none may show up
# in a log line or an answer (checked around every test in tests/conftest.py).
SECRETS: set[str] = {credentials.app_secret for credentials in DEMO_CREDENTIALS.values()}


def set_env(patch: pytest.MonkeyPatch, values: Mapping[str, str]) -> None:
    """Change ShopHook's environment for a test (undone with `patch`): the
    settings are read again. (Before every test they are read afresh.)"""
    for name, value in values.items():
        patch.setenv(name, value)
    reload()


@dataclass
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


# Called with (method, path, answer) for every request a Stack makes.
AnswerWatcher = Callable[[str, str, "Answer"], None]
ANSWER_WATCHERS: list[AnswerWatcher] = []


@dataclass
class Stack:
    """The Chalice app in process, on moto tables, at the frozen NOW."""

    client: Client
    api_key: str

    @classmethod
    def create(cls) -> Stack:
        key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        os.environ[KMS_KEY_VARIABLE] = key
        create_tables()
        forget_stream_positions()
        os.environ.update(queues.create_queues())
        reload()
        return cls(client=Client(app, stage_name="test"), api_key=_seed())

    def reset(self) -> None:
        """Empty tables and queues, then the demo shops and key again: cheaper than a
        new stack, and moto's transactions copy whole tables, so small ones stay fast."""
        for record in ALL_RECORDS:
            record.delete_table()
        for queue in queues.ALL_QUEUES:
            for name in (queue.queue_name(), queue.dead_letter_name()):
                url = queues.client().get_queue_url(QueueName=name)["QueueUrl"]
                queues.client().delete_queue(QueueUrl=url)
        create_tables()
        forget_stream_positions()
        os.environ.update(queues.create_queues())
        reload()
        self.api_key = _seed()

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        at: datetime = NOW,
    ) -> Answer:
        return request(self.client, method, path, body, headers, at)

    def send(self, webhook: SignedWebhook) -> Answer:
        return self.request("POST", webhook.path, webhook.body, webhook.headers)

    def deliver(self, message: Message, sent_at: datetime = NOW) -> Answer:
        return self.send(message.signed(DEMO_CREDENTIALS[message.platform], sent_at))

    def get(self, path: str, api_key: str | None = None) -> Answer:
        key = self.api_key if api_key is None else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.request("GET", path, headers=headers)


def request(
    client: Client,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    at: datetime = NOW,
) -> Answer:
    """One request to the app in process, at `at`; every watcher sees the answer."""
    with time_machine.travel(at, tick=False):
        response = client.http.request(method, path, headers=dict(headers or {}), body=body)
    try:
        decoded = json.loads(response.body) if response.body else None
    except ValueError:
        decoded = response.body.decode("utf-8", errors="replace")
    answer = Answer(response.status_code, decoded, response.headers)
    for watcher in ANSWER_WATCHERS:
        watcher(method, path, answer)
    return answer


def _seed() -> str:
    """The demo shops, connected, and an integrator key for both; returns the key."""
    for shop_id, name in DEMO_SHOPS.items():
        shops.connect(shop_id, name, NOW)
    _, api_key = keys.create_key("test integrator", DEMO_SHOPS, NOW)
    SECRETS.add(api_key)
    return api_key


def drain(at: datetime) -> dict[str, int]:
    """Run the app's SQS consumers at `at` (as Lambda would) until no message is visible."""
    import app as app_module
    from shophook.driver import drain as drain_queues

    with time_machine.travel(at, tick=False):
        return drain_queues(app_module)


def tell_changes(at: datetime = NOW) -> int:
    """Run the stream consumer at `at` (as Lambda would) over the changes committed
    since it last ran; returns how many stream records it read."""
    import app as app_module
    from shophook.driver import drain_streams

    with time_machine.travel(at, tick=False):
        return drain_streams(app_module)


EVERY_EVENT = "sub_every_event"


def listen_to_every_event() -> None:
    """A route from each demo shop to a subscription that wants every event (and
    is not there): each event a change tells is a delivery row the tests can
    read, and one attempted finds no subscription and is cancelled."""
    for shop_id in DEMO_SHOPS:
        SubscriptionRouteRecord(shop_id, EVERY_EVENT, event_types=set(EVENT_TYPES)).save()


def told(at: datetime = NOW) -> list[OutboxRecord]:
    """The outbox rows the changes committed so far told (`listen_to_every_event`
    first, for their events): actions, and deliveries named by their event's type."""
    tell_changes(at)
    return list(OutboxRecord.scan())


def connect_with_tokens(simulator_url: str, at: datetime = NOW) -> None:
    """The demo shops, connected `at` with sessions the simulated platforms honour."""
    for shop_id, name in DEMO_SHOPS.items():
        answer = issue_session(simulator_url, shop_id.partition(":")[2], name)
        SECRETS.update(str(answer[name]) for name in ("access_token", "refresh_token"))
        shops.connect(shop_id, name, at, tokens_from(answer, at))


def inbound_request(webhook: SignedWebhook) -> InboundRequest:
    """What the webhook route hands a platform module for this request."""
    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(urlparse(webhook.path).query, keep_blank_values=True):
        query.setdefault(name, []).append(value)
    headers = {name.lower(): value for name, value in webhook.headers.items()}
    return InboundRequest(query=query, headers=headers, raw_body=webhook.body)


def parsed(message: Message) -> Inbound:
    """The canonical form of a simulator message, through the real platform module."""
    platform = registry()[message.platform]
    webhook = message.signed(DEMO_CREDENTIALS[message.platform], NOW)
    delivery = platform.verify(inbound_request(webhook), DEMO_CREDENTIALS[message.platform], NOW)
    (one,) = platform.messages(delivery)
    return platform.parse(one)


def fold(inbounds: list[Inbound]) -> dict[tuple[str, ...], Any]:
    """The state machine alone: each entity's state after these messages, in this order."""
    states: dict[tuple[str, ...], Any] = {}
    for inbound in inbounds:
        key = (inbound.platform, *entity_of(inbound.event))
        changed = apply(inbound, states.get(key))
        if changed is not None:
            states[key] = changed
    return states


@contextmanager
def on_every_aws_call(handler: Any, event: str = "before-call") -> Iterator[None]:
    """Hook `handler` into `event` of every AWS client the app uses (DynamoDB, SQS,
    and KMS once a secret has been sealed or opened)."""
    clients = {id(connection().client): connection().client, id(queues.client()): queues.client()}
    for record in ALL_RECORDS:
        client = record._get_connection().connection.client
        clients[id(client)] = client
    key_id = settings().kms_key_id
    if key_id:
        # The Encryption SDK's provider keeps its own KMS client per region.
        for client in vault._provider_for(key_id)._regional_clients.values():
            clients[id(client)] = client
    for client in clients.values():
        client.meta.events.register(event, handler)
    try:
        yield
    finally:
        for client in clients.values():
            client.meta.events.unregister(event, handler)


@dataclass
class AwsCalls:
    """Every DynamoDB operation the app makes, in order."""

    operations: list[str] = field(default_factory=list)

    @classmethod
    @contextmanager
    def recording(cls) -> Iterator[AwsCalls]:
        calls = cls()
        with on_every_aws_call(calls._record):
            yield calls

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    def clear(self) -> None:
        self.operations.clear()


@dataclass
class ItemsRead:
    """Items DynamoDB read per operation, from the responses' ScannedCount / Count."""

    read: dict[str, int] = field(default_factory=dict)
    made: dict[str, int] = field(default_factory=dict)

    @classmethod
    @contextmanager
    def recording(cls) -> Iterator[ItemsRead]:
        counter = cls()
        with on_every_aws_call(counter._count, event="after-call"):
            yield counter

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self.made[name] = self.made.get(name, 0) + 1
        scanned = parsed.get("ScannedCount", parsed.get("Count", 0))
        self.read[name] = self.read.get(name, 0) + scanned

    def items_read(self, operation: str) -> int:
        return self.read.get(operation, 0)

    def calls(self, operation: str) -> int:
        return self.made.get(operation, 0)

    def clear(self) -> None:
        self.read.clear()
        self.made.clear()


@dataclass
class Faults:
    """Make the next call(s) of a DynamoDB operation fail as AWS would."""

    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    injected: int = 0

    @classmethod
    @contextmanager
    def injecting(cls) -> Iterator[Faults]:
        faults = cls()
        with on_every_aws_call(faults._answer):
            yield faults

    def fail_next(
        self,
        operation: str,
        code: str = "ProvisionedThroughputExceededException",
        cancellation_reasons: list[str] | None = None,
    ) -> None:
        _, error = aws_error(code)
        if cancellation_reasons is not None:
            error["CancellationReasons"] = [{"Code": reason} for reason in cancellation_reasons]
        self.pending.setdefault(operation, []).append(error)

    def _answer(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        queue = self.pending.get(model.name)
        if not queue:
            return None
        self.injected += 1
        return AWSResponse("https://aws.invalid", 400, {}, None), queue.pop(0)


def aws_error(code: str) -> tuple[AWSResponse, dict[str, Any]]:
    """What botocore would have parsed from AWS refusing a call with `code`."""
    return AWSResponse("https://aws.invalid", 400, {}, None), {
        "Error": {"Code": code, "Message": "injected fault"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }


# An independent oracle for the platforms' signatures, written from
# platforms.md, not from the production signer.
def _oracle_digest(secret: str, message: bytes, method: str) -> str:
    if method == "md5":
        return hashlib.md5(secret.encode() + message + secret.encode()).hexdigest().upper()
    return hmac.new(secret.encode(), message, "sha256").hexdigest().upper()


def _oracle_joined(params: Mapping[str, str]) -> bytes:
    ordered = sorted(params, key=lambda name: name.encode("utf-8"))
    return "".join(name + params[name] for name in ordered).encode("utf-8")


def oracle_spi_sign(
    secret: str,
    query: Mapping[str, str],
    body: bytes,
    method: str = "md5",
    headers: Mapping[str, str] | None = None,
) -> str:
    """A Taobao-style push (1.1): every query parameter but `sign`, an empty one
    as name + "", and each header named in `top-sign-list` with its URL-decoded
    value ("" when absent); the raw body appended."""
    params = {name: value for name, value in query.items() if name != "sign"}
    by_name = {name.lower(): value for name, value in (headers or {}).items()}
    for name in by_name.get("top-sign-list", "").split(","):
        if name:
            params[name] = unquote_plus(by_name.get(name.lower(), ""))
    return _oracle_digest(secret, _oracle_joined(params) + body, method)


def oracle_blank(text: str) -> bool:
    """Empty or whitespace-only as the platforms' Java SDKs judge it
    (Character.isWhitespace: separators but the no-break spaces, and \t..\r, FS..US)."""
    return all(
        char in "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
        or (unicodedata.category(char).startswith("Z") and char not in "\u00a0\u2007\u202f")
        for char in text
    )


def oracle_sdk_sign(secret: str, params: Mapping[str, str], method: str) -> str:
    """A JD-style push (1.2) and both API calls (2.1, 2.2): every field but `sign`
    whose value is not empty or whitespace-only."""
    signed = {
        name: value
        for name, value in params.items()
        if name != "sign" and not oracle_blank(name) and not oracle_blank(value)
    }
    return _oracle_digest(secret, _oracle_joined(signed), method)


TAOBAO_TOKEN_URL = "https://oauth.taobao.test/token"
JD_TOKEN_URL = "https://oauth.jd.test/oauth2/access_token"
JD_REFRESH_URL = "https://oauth.jd.test/oauth2/refresh_token"
ACCESS, REFRESH = "tb-access-7f3a9c", "tb-refresh-2b8e1d"
SECRETS.update({ACCESS, REFRESH, "jd-access-91", "jd-refresh-92", "jd-access-93"})


@contextmanager
def fake_oauth_platforms() -> Iterator[responses.RequestsMock]:
    """The platforms' token endpoints, as platforms.md section 3 describes them."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(
            responses.POST,
            TAOBAO_TOKEN_URL,
            json={
                "access_token": ACCESS,
                "refresh_token": REFRESH,
                "expires_in": 86400,
                "re_expires_in": 2592000,
                "taobao_user_id": "2200000099",
                "taobao_user_nick": "茶叶小铺",
            },
        )
        jd_tokens = {
            "access_token": "jd-access-91",
            "refresh_token": "jd-refresh-92",
            "expires_in": 86400,
            "venderId": "10000099",
            "uid": "jd-seller",
        }
        mock.add(responses.GET, JD_TOKEN_URL, json=jd_tokens)
        mock.add(responses.GET, JD_REFRESH_URL, json={**jd_tokens, "access_token": "jd-access-93"})
        yield mock


def oracle_taobao_query(body: bytes, method: str = "hmac-sha256") -> dict[str, str]:
    """The query the Taobao-style platform sends with `body` at NOW, signed by the oracle."""
    query = {
        "app_key": "demo-app-key",
        "timestamp": format_wire_time(NOW),
        "sign_method": method,
        "v": "2.0",
    }
    query["sign"] = oracle_spi_sign("demo-secret", query, body, method)
    return query


def oracle_signed_taobao(
    body: bytes, method: str = "hmac-sha256", content_type: str = "application/json"
) -> SignedWebhook:
    """Any body, signed at NOW by the oracle as the Taobao-style platform would."""
    path = f"/webhooks/taobao?{urlencode(oracle_taobao_query(body, method))}"
    return SignedWebhook("taobao", "", path, {"Content-Type": content_type}, body)


def oracle_signed_jd(
    method: str, msg_id: str, payload: str, extra: Mapping[str, str] | None = None
) -> SignedWebhook:
    """Any JD-style push, signed at NOW by the oracle; `extra`: form fields beyond
    the documented ones, signed with them."""
    form = {
        **(extra or {}),
        "app_key": "demo-jd-key",
        "timestamp": format_wire_time(NOW),
        "v": "2.0",
        "method": method,
        "msg_id": msg_id,
        "360buy_param_json": payload,
    }
    form["sign"] = oracle_sdk_sign("demo-jd-secret", form, "md5")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return SignedWebhook("jd", msg_id, "/webhooks/jd", headers, urlencode(form).encode())


def oracle_signed_doudian(body: bytes, message_id: str = "x") -> SignedWebhook:
    """Any Doudian-style push body, signed by the oracle (platforms.md 1.3:
    MD5 of app key, body and secret, lower-case hex)."""
    sign = hashlib.md5(b"demo-dd-key" + body + b"demo-dd-secret").hexdigest()
    headers = {"Content-Type": "application/json", "app-id": "demo-dd-key", "event-sign": sign}
    return SignedWebhook("doudian", message_id, "/webhooks/doudian", headers, body)


def approve(authorize_url: str, seller: str, decision: str = "approve") -> dict[str, str]:
    """A seller's decision on the simulated platform's approve page: the query
    the platform redirects the browser back to ShopHook with."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200 and 'id="approve"' in page.text
    fields = dict(re.findall(r'name="(redirect_uri|state)" value="([^"]*)"', page.text))
    action = re.search(r'action="([^"]+)"', page.text).group(1)
    answer = requests.post(
        urlparse(authorize_url)._replace(path=action, query="").geturl(),
        data={**fields, "seller": seller, "nick": "Tea House", "decision": decision},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302
    return {
        key: values[0]
        for key, values in parse_qs(urlparse(answer.headers["Location"]).query).items()
    }
