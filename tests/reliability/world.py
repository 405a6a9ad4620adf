"""A whole ShopHook for the reliability runs: the app on moto, the platform
simulator holding the shops' sessions, and one integrator subscribed to every
event at a loopback endpoint; plus the effects each side saw."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
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
from chalicelib.config import api_url_variable
from chalicelib.domain.events import EVENT_TYPES
from shophook.driver import run_schedules
from simulator.scenarios import DEMO_CREDENTIALS, DEMO_SHOPS
from simulator.server import api_urls, oauth_urls, serve
from tests.support import NOW, TAOBAO_SHOP, Stack, connect_with_tokens, drain

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Subscriber:
    """An integrator's endpoint: answers 2xx unless told to fail, keeps what arrived."""

    url: str = ""
    received: list[dict] = field(default_factory=list)
    failing: int = 0  # the next N deliveries get a 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            if self.failing:
                self.failing -= 1
                return Response("busy", status=503)(environ, start_response)
            self.received.append(
                {"id": request.headers["webhook-id"], **json.loads(request.get_data())}
            )
        return Response("ok")(environ, start_response)

    def receipts(self) -> Counter[str]:
        with self.lock:
            return Counter(item["id"] for item in self.received)

    def same_content_twice(self) -> int:
        """Different webhook ids carrying the same event: a duplicated effect."""
        with self.lock:
            by_id = {item["id"]: item for item in self.received}
        contents = Counter(
            json.dumps([item["type"], item["data"]], sort_keys=True) for item in by_id.values()
        )
        return sum(count - 1 for count in contents.values())


@dataclass
class World:
    stack: Stack
    simulator: str
    subscriber: Subscriber
    calls_seen: int = 0

    def reset(self) -> None:
        """Empty tables and queues; shops with sessions; the subscription; auto-agree."""
        self.stack.reset()
        connect_with_tokens(self.simulator)
        self.calls_seen = len(self._calls())
        self.subscriber.received.clear()
        self.subscriber.failing = 0
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

    def _calls(self) -> list[dict]:
        return requests.get(f"{self.simulator}/_sim/calls", timeout=5).json()

    def platform_effects(self) -> Counter[str]:
        """Platform API calls the platform accepted since the reset, per distinct effect."""
        effects: Counter[str] = Counter()
        for call in self._calls()[self.calls_seen :]:
            if "error_response" in call["answer"]:
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
    simulator = serve("127.0.0.1", sim_port, DEMO_CREDENTIALS, hold_seconds=1.5)
    base = f"http://127.0.0.1:{sim_port}"
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setenv("SHOPHOOK_ALLOW_LOOPBACK_WEBHOOKS", "1")
        for platform, url in oauth_urls(base).items():
            patch.setenv(f"SHOPHOOK_{platform.upper()}_OAUTH_URL", url)
        for platform, url in api_urls(base).items():
            patch.setenv(api_url_variable(platform), url)
        yield World(Stack.create(), base, subscriber)
    simulator.shutdown()
    server.shutdown()
