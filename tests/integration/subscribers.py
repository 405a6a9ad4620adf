"""Integrator endpoints for the subscription tests: a loopback subscriber
(pytest-httpserver) answering from a list of statuses, and the API calls the
tests make."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from datetime import UTC, timedelta

from werkzeug import Request, Response

from simulator.scenarios import taobao_order
from tests.support import NOW, TAOBAO_SHOP

START = NOW - timedelta(days=4)
LATER = NOW.astimezone(UTC) + timedelta(seconds=1)
ORDER_EVENTS = ["order.created", "order.paid", "order.shipped", "order.completed"]


def call(stack, method: str, path: str, body=None, api_key: str | None = None):
    raw = json.dumps(body).encode() if body is not None else b""
    return stack.request(method, path, raw, {"Authorization": f"Bearer {api_key or stack.api_key}"})


def subscribe(
    stack, url: str, event_types=None, shops=(TAOBAO_SHOP,), api_key: str | None = None
) -> dict:
    answer = call(
        stack,
        "POST",
        "/subscriptions",
        {"url": url, "event_types": event_types or ORDER_EVENTS, "shops": list(shops)},
        api_key=api_key,
    )
    assert answer.status == 201, answer.body
    return answer.body


def oracle_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks, from the spec: v1,base64(HMAC-SHA256(key, "id.ts.body"))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Subscriber:
    """A loopback endpoint answering from a list of statuses (the last one repeats)."""

    def __init__(self, httpserver, path: str, statuses=(200,)) -> None:
        self.statuses = list(statuses)
        self.received: list[Request] = []
        self.url = httpserver.url_for(path)
        httpserver.expect_request(path, method="POST").respond_with_handler(self._answer)

    def _answer(self, request: Request) -> Response:
        self.received.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return Response("ok", status=status)

    def types(self) -> list[str]:
        return [json.loads(request.data)["type"] for request in self.received]


def trade_messages(order_id: str = "3500001") -> list:
    return taobao_order(order_id, START)[:4]


def deliveries(stack, subscription_id: str) -> list[dict]:
    return call(stack, "GET", f"/subscriptions/{subscription_id}/deliveries").body["items"]


class HangingEndpoint:
    """A loopback endpoint that takes connections (the kernel completes them)
    and answers none, until `recover` starts answering 200: a hanging integrator,
    with no sleep on either side."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.held: list[socket.socket] = []
        self.answered: list[bytes] = []

    def connections(self) -> int:
        """How many connections were made to it so far (taken, never answered)."""
        self.listener.setblocking(False)
        try:
            while True:
                self.held.append(self.listener.accept()[0])
        except BlockingIOError:
            return len(self.held)

    def recover(self) -> None:
        self.connections()
        self.listener.setblocking(True)
        threading.Thread(target=self._answer_each, daemon=True).start()

    def _answer_each(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += connection.recv(65536)
                self.answered.append(body)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for body in self.answered]

    def close(self) -> None:
        for connection in self.held:
            connection.close()
        self.listener.close()
