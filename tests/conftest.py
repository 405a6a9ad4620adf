"""Shared fixtures. The environment is set before any app module is imported,
because table names are fixed when the PynamoDB models are defined."""

from __future__ import annotations

import os

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    SHOPHOOK_TABLE_PREFIX="test-",
    SHOPHOOK_TAOBAO_APP_KEY="demo-app-key",
    SHOPHOOK_TAOBAO_APP_SECRET="demo-secret",
    SHOPHOOK_JD_APP_KEY="demo-jd-key",
    SHOPHOOK_JD_APP_SECRET="demo-jd-secret",
    SHOPHOOK_DOUDIAN_APP_KEY="demo-dd-key",
    SHOPHOOK_DOUDIAN_APP_SECRET="demo-dd-secret",
    POWERTOOLS_METRICS_NAMESPACE="ShopHookTest",
    SHOPHOOK_PUBLIC_URL="https://shophook.test",
    SHOPHOOK_TAOBAO_OAUTH_URL="https://oauth.taobao.test",
    SHOPHOOK_JD_OAUTH_URL="https://oauth.jd.test",
    SHOPHOOK_DOUDIAN_OAUTH_URL="https://oauth.doudian.test",
)
for variable in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(variable, None)

import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib.settings import LOOPBACK_WEBHOOKS_VARIABLE  # noqa: E402
from tests.support import (  # noqa: E402
    ANSWER_WATCHERS,
    NOW,
    PEER_HOLD_SECONDS,
    SECRETS,
    Answer,
    AwsCalls,
    Faults,
    ItemsRead,
    Stack,
    connect_with_tokens,
    fake_oauth_platforms,
    listen_to_every_event,
    set_env,
)

# One Hypothesis profile for the suite. `make test` must give the same answer on
# a fresh clone and on a busy machine, so:
# - examples are derived from each test (derandomize) and no example database is
#   read or written: every run, everywhere, tries the same inputs;
# - nothing is judged by the wall clock: no deadline, and `too_slow` is off, since
#   it times generation (the first text draw of a process builds Hypothesis's
#   unicode table, seconds under load). Strategies are bounded instead, and the
#   checks on what is generated (data_too_large, filter_too_much,
#   large_base_example) stay on everywhere. A test that shares a fixture across
#   examples on purpose suppresses function_scoped_fixture itself.
# `make soak` (SHOPHOOK_SOAK=1) explores: random seeds, many more examples.
_NOT_BY_THE_CLOCK = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, **_NOT_BY_THE_CLOCK)
settings.register_profile("soak", database=None, print_blob=True, **_NOT_BY_THE_CLOCK)
settings.load_profile("soak" if os.environ.get("SHOPHOOK_SOAK") == "1" else "ci")


# `make test` hands whole files to two workers in the order collected: the
# longest (full-stack reliability runs, the browser and the local stack) go
# first, so that no long file starts last and runs alone at the end.
LONGEST_FIRST = ("reliability", "e2e", "integration", "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def weight(item: pytest.Item) -> int:
        folder = item.path.parent.name
        return LONGEST_FIRST.index(folder) if folder in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=weight)


def _hint(secret: str) -> str:
    """Enough of a secret to find it, not enough to use it."""
    return f"{secret[:4]}… ({len(secret)} characters)"


@pytest.fixture(autouse=True)
def fresh_settings() -> None:
    """Each test starts from the environment as it is (an earlier test's changes undone)."""
    from chalicelib.settings import reload

    reload()


@pytest.fixture(autouse=True)
def no_secret_leaks() -> Iterator[None]:
    """Around every test: no app secret, token or integrator key in any log line
    (the app's or a library's) or in any answer, error pages included. A new
    subscription's secret is shown once, in its 201 (a rotated one in the rotation's
    200); from then on it is watched."""
    from chalicelib.observability import logger

    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logger.registered_formatter)
    logged = [logger, logging.getLogger()]
    leaks: list[str] = []

    def watch(method: str, path: str, answer: Answer) -> None:
        shown = json.dumps([answer.body, dict(answer.headers)], default=str, ensure_ascii=False)
        leaks.extend(
            f"{method} {path} answered {_hint(secret)}" for secret in SECRETS if secret in shown
        )
        shown_once = (path == "/subscriptions" and answer.status == 201) or (
            path.endswith("/rotate-secret") and answer.status == 200
        )
        if method == "POST" and shown_once:
            SECRETS.add(answer.body["secret"])

    for target in logged:
        target.addHandler(handler)
    ANSWER_WATCHERS.append(watch)
    try:
        yield
    finally:
        ANSWER_WATCHERS.remove(watch)
        for target in logged:
            target.removeHandler(handler)
    text = lines.getvalue()
    leaks.extend(f"a log line holds {_hint(secret)}" for secret in SECRETS if secret in text)
    assert not leaks


@pytest.fixture
def stack() -> Iterator[Stack]:
    """Fresh moto tables with the demo shops connected and a key for both."""
    with mock_aws():
        yield Stack.create()


@pytest.fixture
def every_event(stack) -> Stack:
    """The stack, with each event its changes tell stored as a delivery row."""
    listen_to_every_event()
    return stack


@pytest.fixture
def aws_calls() -> Iterator[AwsCalls]:
    with AwsCalls.recording() as calls:
        yield calls


@pytest.fixture
def aws_scanned() -> Iterator[ItemsRead]:
    with ItemsRead.recording() as counter:
        yield counter


@pytest.fixture
def faults() -> Iterator[Faults]:
    with Faults.injecting() as injected:
        yield injected


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The JSON log lines, read where the Powertools handler writes them."""
    from chalicelib.observability import logger

    buffer = io.StringIO()
    previous = logger.logger_handler.setStream(buffer)
    yield buffer
    logger.logger_handler.setStream(previous)


@pytest.fixture
def platforms():
    with fake_oauth_platforms() as mock:
        yield mock


@pytest.fixture
def simulator(monkeypatch) -> Iterator[str]:
    """The platform simulator on a free loopback port, with ShopHook's OAuth and
    API URLs on it."""
    from bench.stack import free_port
    from simulator.scenarios import DEMO_CREDENTIALS
    from simulator.server import serve, shophook_settings

    port = free_port()
    server = serve("127.0.0.1", port, DEMO_CREDENTIALS, hold_seconds=PEER_HOLD_SECONDS)
    set_env(monkeypatch, shophook_settings(f"http://127.0.0.1:{port}"))
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture
def outbound(stack, simulator) -> Stack:
    """The stack with the demo shops holding simulator sessions."""
    connect_with_tokens(simulator)
    return stack


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Integrator endpoints in tests listen on 127.0.0.1 (pytest-httpserver)."""
    return ("127.0.0.1", 0)


@pytest.fixture
def loopback_webhooks(monkeypatch) -> None:
    set_env(monkeypatch, {LOOPBACK_WEBHOOKS_VARIABLE: "1"})


@pytest.fixture
def cli_isolation() -> Iterator[None]:
    """The CLI turns metric lines off and logs to stderr; undo that after each test."""
    from chalicelib.observability import logger

    os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
    stream = logger.logger_handler.stream
    yield
    os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
    logger.logger_handler.stream = stream  # no flush: the CLI's stream may be closed


@pytest.fixture
def now() -> datetime:
    return NOW.astimezone(UTC)
