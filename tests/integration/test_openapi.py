"""GET /openapi.json, and schemathesis driven by it against the app in
process (a WSGI adapter over Chalice's local gateway, on moto): every answer
to what it generates is not a 5xx and conforms to the description. Bounded
and derandomized like the rest of the suite; nothing leaves the process."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from chalice.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

import app as app_module
from chalicelib.service.commands import SubscriptionRequest
from chalicelib.settings import LOOPBACK_WEBHOOKS_VARIABLE
from simulator.scenarios import taobao_order
from tests.support import NOW, TAOBAO_SHOP, Stack, request, set_env

EXAMPLES_PER_OPERATION = 12
ORDER_ID, CASE_ID = "3010001", "R3010001"
# The host of the documented subscription example, and a public address for it.
EXAMPLE_HOST, EXAMPLE_ADDRESS = "hooks.example.com", "93.184.216.34"


def test_the_description_covers_sections_4_and_5_and_no_platform_route(stack):
    answer = stack.get("/openapi.json", api_key="")
    assert answer.status == 200
    described = answer.body
    assert described["openapi"] == "3.1.0"
    routes = {(path, method) for path, methods in described["paths"].items() for method in methods}
    assert routes == {(path, method.lower()) for path, method in app_module.OPERATIONS}
    assert ("/subscriptions/{subscription_id}", "patch") in routes
    assert ("/subscriptions/{subscription_id}/rotate-secret", "post") in routes
    assert not any(path.startswith(("/webhooks", "/oauth")) for path, _ in routes)
    created = described["paths"]["/subscriptions"]["post"]
    assert set(created["responses"]) == {
        "201",
        "400",
        "401",
        "404",
        "409",
        "413",
        "415",
        "422",
        "503",
    }
    assert created["security"] == [{"apiKey": []}]
    assert described["paths"]["/health"]["get"]["security"] == []
    error = described["components"]["schemas"]["ErrorAnswer"]
    assert error["required"] == ["code", "message"]


def wsgi(client: Client) -> Callable[..., Iterable[bytes]]:
    """The app as a WSGI application, through the suite's own request path
    (frozen at NOW, every answer watched for secrets)."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = quote(environ.get("PATH_INFO", "/"), safe="/:@!$&'()*+,;=-._~")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        headers = {
            name[5:].replace("_", "-").lower(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        answer = request(client, environ["REQUEST_METHOD"], path, body, headers)
        raw = b"" if answer.body is None else json.dumps(answer.body).encode()
        start_response(f"{answer.status} -", list(answer.headers.items()))
        return [raw]

    return application


# The description needs no storage: it is read once, here.
schema = schemathesis.openapi.from_wsgi(
    "/openapi.json",
    wsgi(Client(app_module.app, stage_name="test")),
    config=SchemathesisConfig.from_dict(
        {
            # The seeded order and case of the demo shop, so reads and actions go deep.
            "parameters": {"shop_id": TAOBAO_SHOP, "order_id": ORDER_ID, "case_id": CASE_ID},
            "generation": {
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
                "database": "none",
            },
            # Methods a route does not serve are API Gateway's to answer, not the
            # app's (Chalice's local gateway answers them with no body at all).
            "phases": {"stateful": {"enabled": False}, "coverage": {"unexpected-methods": []}},
            # As the suite's profile: nothing judged by the wall clock.
            "suppress-health-check": ["too_slow"],
        }
    ),
)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass
class Seeded:
    stack: Stack
    subscription_id: str


@pytest.fixture
def seeded(stack, monkeypatch) -> Seeded:
    """The demo shop with an order, its refund case and a subscription; loopback
    endpoints allowed, and a resolver that knows only the documented example host
    (address literals need no lookup), so nothing leaves the machine."""
    set_env(monkeypatch, {LOOPBACK_WEBHOOKS_VARIABLE: "1"})
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host == EXAMPLE_HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (EXAMPLE_ADDRESS, port or 0))]
        if isinstance(host, str) and host != "localhost" and not _is_address(host):
            raise socket.gaierror(socket.EAI_NONAME, "not resolved in tests")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    for message in taobao_order(ORDER_ID, NOW)[:9]:
        stack.deliver(message)
    created = stack.request(
        "POST",
        "/subscriptions",
        json.dumps(SubscriptionRequest.model_json_schema()["examples"][0]).encode(),
        {"Authorization": f"Bearer {stack.api_key}"},
    )
    assert created.status == 201, created.body
    return Seeded(stack, created.body["id"])


@schema.parametrize()
# One seeded stack per operation, shared by its examples on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_every_answer_is_no_server_error_and_as_described(case, seeded):
    if case.path_parameters and "subscription_id" in case.path_parameters:
        case.path_parameters["subscription_id"] = seeded.subscription_id
    case.call_and_validate(
        headers={"Authorization": f"Bearer {seeded.stack.api_key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
