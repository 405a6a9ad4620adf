"""The simulator's OAuth over real loopback HTTP, with ShopHook's connect on moto."""

from __future__ import annotations

import re
import socket
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from chalicelib.service import oauth, tokens
from chalicelib.store.records import ShopRecord
from simulator.scenarios import DEMO_CREDENTIALS
from simulator.server import oauth_urls, serve
from tests.support import NOW


@pytest.fixture
def simulator(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve("127.0.0.1", port, DEMO_CREDENTIALS)
    for platform, url in oauth_urls(f"http://127.0.0.1:{port}").items():
        monkeypatch.setenv(f"SHOPHOOK_{platform.upper()}_OAUTH_URL", url)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def approve(authorize_url: str, seller: str, decision: str = "approve") -> dict[str, str]:
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


@pytest.mark.parametrize(("platform", "seller"), [("taobao", "2200000077"), ("jd", "10000077")])
def test_connect_through_the_simulated_platform(stack, simulator, platform, seller):
    started = oauth.start(platform, NOW)
    granted = approve(started.authorize_url, seller)
    shop = oauth.finish(platform, granted, started.browser_nonce, NOW)
    assert (shop.shop_id, shop.name) == (f"{platform}:{seller}", "Tea House")
    record = ShopRecord.get(shop.shop_id)
    refreshed = tokens.refresh_due(record.token_expires_at)
    assert refreshed.refreshed == [shop.shop_id]
    assert tokens.unsealed(ShopRecord.get(shop.shop_id)).access_token != shop.tokens.access_token


def test_a_denied_approval_and_a_reused_code_connect_nothing(stack, simulator):
    started = oauth.start("taobao", NOW)
    denied = approve(started.authorize_url, "2200000078", decision="deny")
    with pytest.raises(oauth.ConnectError, match="not connected"):
        oauth.finish("taobao", denied, started.browser_nonce, NOW)
    started = oauth.start("taobao", NOW)
    granted = approve(started.authorize_url, "2200000078")
    oauth.finish("taobao", granted, started.browser_nonce, NOW)
    again = oauth.start("taobao", NOW)
    with pytest.raises(oauth.ConnectError, match="did not confirm"):
        oauth.finish(
            "taobao",
            {**granted, "state": parse_qs(urlparse(again.authorize_url).query)["state"][0]},
            again.browser_nonce,
            NOW,
        )


def test_the_simulator_refuses_a_wrong_client_secret(simulator):
    answer = requests.post(
        f"{simulator}/taobao/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": "demo-app-key",
            "client_secret": "guess",
        },
        timeout=5,
    )
    assert (answer.status_code, answer.json()) == (401, {"error": "invalid_client"})
