"""`shophook local` as a user runs it: a subprocess with moto, chalice local and
the demo data, driven over HTTP by the simulator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import requests
from werkzeug import Response

from simulator.server import shophook_settings
from tests.e2e.stack import (
    BIN,
    DEMO_KEY,
    STARTUP_SECONDS,
    operator_cli,
    read,
    simulate,
    wait_for,
)
from tests.support import oracle_sdk_sign


@pytest.mark.e2e
def test_make_run_then_the_printed_example_shows_a_normalised_order(local_stack):
    url, _, output, *_, simulator_url = local_stack
    banner = "".join(output)
    assert f"Bearer {DEMO_KEY}" in banner and "shophook simulate taobao-order" in banner

    simulated = subprocess.run(
        [BIN / "shophook", "simulate", "taobao-order", "--url", url, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    order = requests.get(
        f"{url}/shops/taobao:2200000001/orders/3010001",
        headers={"Authorization": f"Bearer {DEMO_KEY}"},
        timeout=10,
    ).json()
    assert order["status"] == "completed"
    assert order["total_fen"] == 19900
    assert order["shipment"]["status"] == "delivered"

    shuffled = subprocess.run(
        [
            BIN / "shophook",
            "simulate",
            "jd-order",
            "--url",
            url,
            "--shuffle",
            "--duplicates",
            "5",
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shuffled.returncode == 0, shuffled.stdout
    jd = requests.get(
        f"{url}/shops/jd:10000001/after-sales?status=open",
        headers={"Authorization": f"Bearer {DEMO_KEY}"},
        timeout=10,
    ).json()
    assert [case["status"] for case in jd["items"]] == ["returned"]

    # Doudian-style: thin trade messages, each completed by order.orderDetail in the
    # background (the local stack drains its queues).
    simulate(url, "doudian-order", simulator_url)
    path = "/shops/doudian:30000001/orders/4900000000001"
    wait_for(lambda: read(url, path).get("status") == "completed", "the Doudian-style order")
    assert read(url, path)["total_fen"] == 5990


@pytest.mark.e2e
def test_the_rules_on_the_local_stack(local_stack):
    url, _, _, lines, moto_port, _ = local_stack
    for scenario in ("late-shipment", "late-return", "fresh-return", "quality-return"):
        simulate(url, scenario)
    shop = "/shops/taobao:2200000001"
    late = read(url, f"{shop}/orders/3020001")
    assert [flag["rule"] for flag in late["flags"]] == ["platform.ship_by"]

    def decided(case_id: str) -> list[tuple[str, str]]:
        case = read(url, f"{shop}/after-sales/{case_id}")
        return [(d["rule"], d["outcome"]) for d in case["decisions"]]

    assert decided("R3030001") == [("law.no_reason_return", "ineligible")]
    assert decided("R3040001") == [("law.no_reason_return.exclusions", "ineligible")]
    assert decided("R3050001") == [("law.no_reason_return.condition", "eligible")]

    explained = operator_cli(moto_port, "explain", "taobao:2200000001", "R3030001")
    assert explained.returncode == 0, explained.stderr
    assert "law.no_reason_return" in explained.stdout and "ineligible" in explained.stdout
    assert "taobao_refund_RefundCreated" in explained.stdout

    # The local driver runs the schedules (every second here).
    while "schedules ran" not in (line := lines.get(timeout=STARTUP_SECONDS)):
        pass
    assert "sweep_deadlines" in line


@pytest.mark.e2e
def test_an_agreed_refund_reaches_the_platform_and_integrators_hear_of_it(local_stack, httpserver):
    url, *_, simulator_url = local_stack
    heard = []
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda request: heard.append(request) or Response("ok")
    )
    subscription = requests.post(
        f"{url}/subscriptions",
        json={
            "url": httpserver.url_for("/hook"),
            "event_types": ["after_sale.updated"],
            "shops": ["taobao:2200000001"],
        },
        headers={"Authorization": f"Bearer {DEMO_KEY}"},
        timeout=10,
    )
    assert subscription.status_code == 201, subscription.text
    secret = subscription.json()["secret"]
    simulate(url, "awaiting-refund")
    shop = "/shops/taobao:2200000001"
    action = requests.post(
        f"{url}{shop}/after-sales/R3060001/actions",
        json={"action": "agree_refund"},
        headers={"Authorization": f"Bearer {DEMO_KEY}"},
        timeout=10,
    )
    assert action.status_code == 202, action.text
    action_path = f"{shop}/after-sales/R3060001/actions/{action.json()['action_id']}"
    assert wait_for(lambda: read(url, action_path)["state"] == "sent", "the action to be sent")
    calls = requests.get(f"{simulator_url}/_sim/calls", timeout=10).json()
    (agreed,) = [call for call in calls if call["method"] == "taobao.rp.refunds.agree"]
    form = agreed["params"]
    assert form["refund_infos"].startswith("R3060001|")
    assert form["sign"] == oracle_sdk_sign("demo-secret", form, "hmac-sha256")

    wait_for(lambda: heard, "the integrator's webhook")
    delivery = heard[0]
    assert json.loads(delivery.data)["type"] == "after_sale.updated"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{delivery.headers['webhook-id']}.{delivery.headers['webhook-timestamp']}."
    digest = hmac.new(key, signed.encode() + delivery.data, hashlib.sha256).digest()
    assert delivery.headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()


@pytest.mark.e2e
def test_a_seller_connects_a_shop_in_a_real_browser(local_stack, new_browser, tmp_path):
    url, _, _, _, moto_port, _ = local_stack
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    browser = new_browser()
    browser.get(f"{url}/oauth/taobao/connect")
    assert "Authorize ShopHook" in browser.page_source  # the simulated platform
    seller = browser.find_element(By.NAME, "seller")
    seller.clear()
    seller.send_keys("2200000555")
    browser.find_element(By.ID, "approve").click()
    # Approve -> the platform redirects back -> ShopHook's callback page.
    WebDriverWait(browser, 30).until(lambda b: "/oauth/taobao/callback" in b.current_url)
    heading = browser.find_element(By.TAG_NAME, "h1").text
    page = browser.find_element(By.TAG_NAME, "main").text
    browser.save_screenshot(str(tmp_path / "connected.png"))
    assert heading == "Shop connected"
    assert "taobao:2200000555" in page and "simulated taobao shop" in page
    listed = operator_cli(moto_port, "shops", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    shops = {shop["shop_id"]: shop["status"] for shop in json.loads(listed.stdout)}
    assert shops["taobao:2200000555"] == "connected"


@pytest.mark.e2e
def test_pushes_dropped_by_the_platform_are_healed_by_reconcile(local_stack):
    """Half of an order's pushes dropped (`simulate --drop`); `shophook --stage local
    reconcile --since` pulls the rest from the simulated platform."""
    url, _, _, _, moto_port, simulator_url = local_stack
    dropped = subprocess.run(
        [
            BIN / "shophook",
            "simulate",
            "taobao-order",
            "--order",
            "3019001",
            "--drop",
            "50",
            "--seed",
            "5",
            "--url",
            url,
            "--simulator",
            simulator_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert [row["status"] for row in json.loads(dropped.stdout)].count("dropped") == 6
    since = (datetime.now(UTC) - timedelta(days=5, hours=1)).isoformat()
    pulled = operator_cli(
        moto_port,
        "reconcile",
        "taobao:2200000001",
        "--since",
        since,
        "--json",
        env=shophook_settings(simulator_url),
    )
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["refused"] is None
    order = read(url, "/shops/taobao:2200000001/orders/3019001")
    case = read(url, "/shops/taobao:2200000001/after-sales/R3019001")
    assert (order["status"], case["status"]) == ("completed", "refunded")


@pytest.mark.e2e
def test_sigterm_stops_everything_it_started(local_stack):
    url, process, *_ = local_stack
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health", timeout=2)
