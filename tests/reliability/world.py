"""A whole ShopHook for the reliability runs: the app on moto, the platform
simulator holding the shops' sessions, and one integrator subscribed to every
event at a loopback endpoint; plus the effects each side saw."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import requests
import time_machine
from moto import mock_aws
from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, make_server

import app as app_module
from bench.stack import free_port
from chalicelib.domain.events import EVENT_TYPES
from chalicelib.settings import (
    INTEGRATOR_TIMEOUT_VARIABLE,
    LOOPBACK_WEBHOOKS_VARIABLE,
    OUTBOUND_TIMEOUT_VARIABLE,
)
from chalicelib.store.records import OutboxRecord
from shophook.driver import run_schedules
from simulator.scenarios import (
    DEMO_CREDENTIALS,
    DEMO_SHOPS,
    Message,
    doudian_order,
    jd_order,
    taobao_order,
)
from simulator.server import drop_connection, serve, shophook_settings
from tests.support import (
    DOUDIAN_SHOP,
    JD_SHOP,
    NOW,
    PEER_HOLD_SECONDS,
    PEER_TIMEOUT_SECONDS,
    TAOBAO_SHOP,
    Stack,
    connect_with_tokens,
    drain,
    set_env,
)

# Platform API parameters that vary per call, not per effect.
CALL_NOISE = {
    "sign",
    "timestamp",
    "session",
    "access_token",
    "app_key",
    "v",
    "sign_method",
    "format",
}
AUTO_AGREE = {"overrides": {"seller.auto_agree_unshipped_refund": {"max_amount_fen": 50000}}}


LIFECYCLE_START = NOW - timedelta(days=6)
UNSHIPPED_START = NOW - timedelta(hours=5)


def refund_before_shipping(tid: str) -> list[Message]:
    """Created, paid, then a refund-only request an hour later: the seller's
    opted-in auto-agree sends one `agree_refund` to the platform."""
    created, paid = taobao_order(tid, UNSHIPPED_START)[:2]
    refund = taobao_order(tid, UNSHIPPED_START, return_requested_after=1)[8]
    payload = {
        **refund.payload,
        "has_good_return": False,
        "refund_phase": "onsale",
        "good_status": "BUYER_NOT_RECEIVED",
        "refund_fee": "150.00",
    }
    return [
        created,
        paid,
        Message("taobao", f"{refund.message_id}-only", refund.topic, payload, refund.shop_ref),
    ]


# name -> (messages, the paths whose answers make up the final state)
FAMILIES: dict[str, tuple[Callable[[], list[Message]], list[str]]] = {
    "taobao lifecycle": (
        lambda: taobao_order("3800001", LIFECYCLE_START),
        [f"/shops/{TAOBAO_SHOP}/orders/3800001", f"/shops/{TAOBAO_SHOP}/after-sales/R3800001"],
    ),
    "jd lifecycle": (
        lambda: jd_order("3800002", LIFECYCLE_START),
        [f"/shops/{JD_SHOP}/orders/3800002", f"/shops/{JD_SHOP}/after-sales/afs-38000027"],
    ),
    "taobao refund before shipping": (
        lambda: refund_before_shipping("3800003"),
        [f"/shops/{TAOBAO_SHOP}/orders/3800003", f"/shops/{TAOBAO_SHOP}/after-sales/R3800003"],
    ),
    "doudian lifecycle": (
        lambda: doudian_order("3800005", LIFECYCLE_START),
        [f"/shops/{DOUDIAN_SHOP}/orders/3800005", f"/shops/{DOUDIAN_SHOP}/after-sales/38000057"],
    ),
}
STATE_PATHS = [f"/shops/{shop_id}/deadlines" for shop_id in DEMO_SHOPS]


def without(body, names: frozenset[str] = frozenset({"version"})):
    """The body with the fields `names` left out, at any depth."""
    if isinstance(body, dict):
        return {name: without(value, names) for name, value in body.items() if name not in names}
    if isinstance(body, (list, tuple)):
        return [without(item, names) for item in body]
    return body


def final_state(the_world: World, paths: list[str]) -> dict[str, object]:
    """What the API shows on `paths` and the shops' deadlines, and where each
    platform action ended (sent, not failed). Deliveries are checked by what the
    subscriber received: their number follows the arrival order."""
    answers = {path: the_world.stack.get(path) for path in [*paths, *STATE_PATHS]}
    shown = {path: (answer.status, without(answer.body)) for path, answer in answers.items()}
    actions = Counter(
        (row.type, row.state) for row in OutboxRecord.scan(OutboxRecord.kind == "action")
    )
    return {**shown, "actions": sorted(actions.items())}


# What a failing integrator answers: an HTTP status, or "hang" (past ShopHook's
# timeout) and "reset" (the connection dropped), both after taking the event in.
SUBSCRIBER_ANSWERS = {"unavailable": 503, "rate_limited": 429}


@dataclass
class Subscriber:
    """An integrator's endpoint: keeps what arrived, answers 2xx unless told to fail."""

    url: str = ""
    received: list[dict] = field(default_factory=list)
    faults: deque[str] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            self.received.append(
                {"id": request.headers["webhook-id"], **json.loads(request.get_data())}
            )
            fault = self.faults.popleft() if self.faults else None
        if fault == "hang":
            time.sleep(PEER_HOLD_SECONDS)
        if fault == "reset":
            drop_connection(environ)
        return Response("ok", status=SUBSCRIBER_ANSWERS.get(fault, 200))(environ, start_response)

    def receipts(self) -> Counter[str]:
        with self.lock:
            return Counter(item["id"] for item in self.received)

    def contents(self) -> Counter[str]:
        """The events that arrived, one per webhook id; more than one of a content
        means different ids carried the same event: a duplicated effect."""
        with self.lock:
            by_id = {item["id"]: item for item in self.received}
        return Counter(
            json.dumps([item["type"], item["data"]], sort_keys=True) for item in by_id.values()
        )


@dataclass
class World:
    stack: Stack
    simulator: str
    subscriber: Subscriber

    def reset(self, connected_at: datetime = NOW) -> None:
        """Empty tables and queues; shops with sessions (connected and pulled from
        `connected_at`); the subscription; auto-agree."""
        self.stack.reset()
        requests.post(f"{self.simulator}/_sim/reset", timeout=5).raise_for_status()
        connect_with_tokens(self.simulator, connected_at)
        self.subscriber.received.clear()
        self.subscriber.faults.clear()
        headers = {"Authorization": f"Bearer {self.stack.api_key}"}
        subscription = {
            "url": self.subscriber.url,
            "event_types": list(EVENT_TYPES),
            "shops": list(DEMO_SHOPS),
        }
        answer = self.stack.request(
            "POST", "/subscriptions", json.dumps(subscription).encode(), headers
        )
        assert answer.status == 201, answer.body
        policy = json.dumps(AUTO_AGREE).encode()
        answer = self.stack.request("PUT", f"/shops/{TAOBAO_SHOP}/policy", policy, headers)
        assert answer.status == 200, answer.body

    def fail_next(self, peer: str, faults: list[str]) -> None:
        """Faults for the next calls to `peer`: a platform's API or "integrator"."""
        if peer == "integrator":
            self.subscriber.faults.extend(faults)
            return
        answer = requests.post(f"{self.simulator}/_sim/faults", json={peer: faults}, timeout=5)
        answer.raise_for_status()

    def unfired_faults(self) -> int:
        queued = requests.get(f"{self.simulator}/_sim/faults", timeout=5).json()
        return len(self.subscriber.faults) + sum(len(faults) for faults in queued.values())

    def platform_effects(self) -> Counter[str]:
        """Platform API calls the platform accepted since the reset, per distinct effect
        (reconciliation queries and the message channel's calls change no shop's
        trade: not effects)."""
        effects: Counter[str] = Counter()
        for call in requests.get(f"{self.simulator}/_sim/calls", timeout=5).json():
            if not call["carried_out"] or call["query"] or call["channel"]:
                continue
            business = {k: v for k, v in call["params"].items() if k not in CALL_NOISE}
            effects[json.dumps([call["method"], business], sort_keys=True)] += 1
        return effects

    def settle(self, start: datetime = NOW, rounds: int = 6) -> datetime:
        """Let time pass as it would: consumers drain, failed messages come back after
        their visibility timeout, the schedules run (the sweeper, the requeue of what
        was never enqueued). Returns the time reached."""
        at = start
        for _ in range(rounds):
            at += timedelta(minutes=7)
            with time_machine.travel(at, tick=False):
                run_schedules(app_module, at)
            drain(at)
        return at


@contextmanager
def world() -> Iterator[World]:
    """One World per module: moto, the simulator and the subscriber on loopback."""
    subscriber = Subscriber()
    port = free_port()
    server: BaseWSGIServer = make_server("127.0.0.1", port, subscriber, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    subscriber.url = f"http://127.0.0.1:{port}/hook"
    sim_port = free_port()
    simulator = serve("127.0.0.1", sim_port, DEMO_CREDENTIALS, hold_seconds=PEER_HOLD_SECONDS)
    base = f"http://127.0.0.1:{sim_port}"
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        set_env(
            patch,
            {
                LOOPBACK_WEBHOOKS_VARIABLE: "1",
                OUTBOUND_TIMEOUT_VARIABLE: str(PEER_TIMEOUT_SECONDS),
                INTEGRATOR_TIMEOUT_VARIABLE: str(PEER_TIMEOUT_SECONDS),
                **shophook_settings(base),
            },
        )
        yield World(Stack.create(), base, subscriber)
    simulator.shutdown()
    server.shutdown()
