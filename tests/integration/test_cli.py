"""The operator CLI, in process, against moto."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import responses
import time_machine

from chalicelib.store.records import QuarantineRecord
from shophook.cli import main
from simulator.scenarios import DEMO_CREDENTIALS, DEMO_SHOPS, Message, taobao_order
from tests.integration.subscribers import LATER, Subscriber, subscribe, trade_messages
from tests.support import NOW, TAOBAO_SHOP, drain

pytestmark = pytest.mark.usefixtures("cli_isolation")


ORDER = taobao_order("3100001", NOW - timedelta(hours=30))


def run_json(capsys, *argv: str):
    capsys.readouterr()  # what the test itself printed before
    with time_machine.travel(NOW, tick=False):
        assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_shops_list_add_and_show(stack, capsys):
    assert [s["shop_id"] for s in run_json(capsys, "shops", "list")] == sorted(DEMO_SHOPS)
    assert main(["shops", "add", "taobao:777", "--name", "Tea"]) == 0
    capsys.readouterr()
    (shown,) = run_json(capsys, "shops", "show", "taobao:777")
    assert (shown["name"], shown["status"]) == ("Tea", "connected")
    with pytest.raises(SystemExit, match="no shop 'taobao:888'"):
        main(["shops", "show", "taobao:888"])
    with pytest.raises(SystemExit, match="shop id must look like"):
        main(["shops", "add", "amazon:1"])


def test_a_created_key_works_once_shown_is_listed_without_its_secret_and_can_be_revoked(
    stack, capsys
):
    created = run_json(capsys, "keys", "create", "--name", "erp", "--shop", TAOBAO_SHOP)
    stack.deliver(ORDER[1])
    assert stack.get(f"/shops/{TAOBAO_SHOP}/orders/3100001", created["key"]).status == 200
    listed = run_json(capsys, "keys", "list")
    assert created["key"] not in json.dumps(listed)
    assert created["key_id"] in [row["key_id"] for row in listed]
    assert main(["keys", "revoke", created["key_id"]]) == 0
    assert stack.get(f"/shops/{TAOBAO_SHOP}/orders/3100001", created["key"]).status == 401


def test_deadlines_lists_pending_ones_soonest_first(stack, capsys):
    stack.deliver(ORDER[1])
    rows = run_json(capsys, "deadlines", "--shop", TAOBAO_SHOP)
    assert [(row["entity"], row["rule"]) for row in rows] == [("order:3100001", "platform.ship_by")]
    assert run_json(capsys, "deadlines", "--before", (NOW + timedelta(hours=1)).isoformat()) == []


def test_quarantine_list_show_and_reprocess(stack, capsys):
    broken = Message(
        "taobao", "q-9", ORDER[1].topic, {**ORDER[1].payload, "payment": "?"}, "2200000001"
    )
    stack.deliver(broken)
    (held,) = run_json(capsys, "quarantine", "list")
    assert (held["key"], held["field"]) == ("taobao#q-9", "content.payment")
    shown = run_json(capsys, "quarantine", "show", "taobao#q-9")
    assert json.loads(json.loads(shown["body"])["content"])["payment"] == "?"
    assert shown["params"]["sign_method"] == "hmac-sha256"

    # Still malformed: it stays, one more delivery on the count.
    with time_machine.travel(NOW, tick=False), pytest.raises(SystemExit):
        raise SystemExit(main(["quarantine", "reprocess", "taobao#q-9", "--json"]))
    capsys.readouterr()
    assert QuarantineRecord.get("taobao#q-9").deliveries == 2

    # A message a fixed parser now accepts is stored and released.
    good = ORDER[1].signed(DEMO_CREDENTIALS["taobao"], NOW)
    QuarantineRecord(
        "taobao#fixed",
        platform="taobao",
        message_id="fixed",
        raw_body=good.body,
        params="{}",
        field="content",
        error="was refused by an older parser",
        first_received_at=NOW,
        last_received_at=NOW,
        deliveries=1,
    ).save()
    results = run_json(capsys, "quarantine", "reprocess", "taobao#fixed")
    assert results == [{"key": "taobao#fixed", "status": 200, "stored": True}]
    assert stack.get(f"/shops/{TAOBAO_SHOP}/orders/3100001").body["status"] == "paid"
    assert [row["key"] for row in run_json(capsys, "quarantine", "list")] == ["taobao#q-9"]


def test_explain_prints_the_case_timeline_decisions_and_deadlines(stack, capsys):
    for message in ORDER[:9]:
        stack.deliver(message)
    explained = run_json(capsys, "explain", TAOBAO_SHOP, "R3100001")
    assert [entry["topic"] for entry in explained["timeline"]] == ["taobao_refund_RefundCreated"]
    assert explained["case"]["decisions"][0]["rule"] == "law.no_reason_return"
    chinese = run_json(capsys, "explain", TAOBAO_SHOP, "R3100001", "--lang", "zh")
    assert "无理由退货" in chinese["case"]["decisions"][0]["explanation"]
    with time_machine.travel(NOW, tick=False):
        assert main(["explain", TAOBAO_SHOP, "R3100001"]) == 0
    table = capsys.readouterr().out
    assert all(title in table for title in ("timeline", "decisions", "deadlines"))


def test_the_committed_infra_template_is_current(capsys):
    assert main(["infra", "--check"]) == 0


# A seller's shop name as the platform sent it, and as the operator must see it.
HOSTILE_NAMES = [
    ("[/oops]", "[/oops]"),
    ("[link=https://evil.test]Tea[/link]", "[link=https://evil.test]Tea[/link]"),
    ("Tea\x1b]8;;https://evil.test\x1b\\here\x1b]8;;\x1b\\", "Teahere"),
    ("Tea\x1b[2J\x1b[31mred\x9b1m\x07\u202eeno", "Teared1meno"),
]


@pytest.mark.parametrize(("name", "shown"), HOSTILE_NAMES)
def test_platform_text_is_printed_as_plain_text(stack, capsys, monkeypatch, name, shown):
    """A seller's shop name (the platform's nick) is neither Rich markup nor
    terminal control: `[/oops]` crashed `shops list`, `[link=...]` became a link
    and escape sequences reached the terminal (issue 18)."""
    from chalicelib.service import shops
    from shophook import cli

    monkeypatch.setattr(cli.console, "width", 200)  # a wide terminal: no cell wraps
    shops.connect("taobao:31337", name, NOW)
    capsys.readouterr()
    assert main(["shops", "list"]) == 0
    printed = capsys.readouterr().out
    assert shown in printed
    assert not any(char in printed for char in "\x1b\x07\x9b\u202e")


def test_subscriptions_list_show_disable_enable_and_replay(
    stack, capsys, loopback_webhooks, httpserver
):
    subscriber = Subscriber(httpserver, "/operated")
    created = subscribe(stack, subscriber.url, event_types=["order.paid"])
    (listed,) = run_json(capsys, "subscriptions", "list", "--shop", TAOBAO_SHOP)
    assert (listed["id"], listed["enabled"], listed["disabled_reason"]) == (created["id"], True, "")
    assert run_json(capsys, "subscriptions", "list", "--shop", "jd:10000001") == []
    assert created["secret"] not in json.dumps(
        run_json(capsys, "subscriptions", "show", created["id"])
    )

    assert main(["subscriptions", "disable", created["id"]]) == 0
    (disabled,) = run_json(capsys, "subscriptions", "list")
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "operator")
    stack.deliver(trade_messages()[1])
    drain(LATER)
    assert subscriber.received == []

    assert main(["subscriptions", "enable", created["id"]]) == 0
    since = (NOW - timedelta(minutes=1)).isoformat()
    replayed = run_json(capsys, "subscriptions", "replay", created["id"], "--since", since)
    assert replayed["replayed"] == 1
    drain(LATER)
    assert subscriber.types() == ["order.paid"]
    shown = run_json(capsys, "subscriptions", "show", created["id"])
    assert (shown["health"]["last_outcome"], shown["health"]["last_status_code"]) == (
        "delivered",
        200,
    )
    with pytest.raises(SystemExit, match="no subscription 'sub_nope'"):
        main(["subscriptions", "show", "sub_nope"])
    with pytest.raises(SystemExit, match="send"):
        main(["subscriptions", "replay", created["id"]])


def test_a_revoked_keys_subscription_cannot_be_enabled_again(
    stack, capsys, loopback_webhooks, httpserver
):
    made = run_json(capsys, "keys", "create", "--name", "gone", "--shop", TAOBAO_SHOP)
    created = subscribe(stack, httpserver.url_for("/gone"), api_key=made["key"])
    with time_machine.travel(NOW, tick=False):
        assert main(["keys", "revoke", made["key_id"]]) == 0
    (revoked,) = run_json(capsys, "subscriptions", "list", "--key", made["key_id"])
    assert (revoked["enabled"], revoked["disabled_reason"]) == (False, "key_revoked")
    with pytest.raises(SystemExit, match="api key of this subscription was revoked"):
        main(["subscriptions", "enable", created["id"]])


def test_a_scenario_held_but_not_pushed_is_healed_by_reconcile(outbound, simulator, capsys):
    """`simulate --no-push` holds the scenario on the simulated platform only;
    `reconcile --since` pulls it, prints what it healed; `shops show` shows the cursor."""
    held = run_json(
        capsys, "simulate", "late-shipment", "--no-push", "--simulator", simulator, "--url", "x"
    )
    assert held == []
    assert outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3020001").status == 404
    since = (NOW - timedelta(days=3, minutes=1)).isoformat()
    pulled = run_json(capsys, "reconcile", TAOBAO_SHOP, "--since", since)
    assert pulled["healed"] == [
        {"entity": "order:3020001", "listing": "taobao.trades.sold.increment.get"}
    ]
    assert (pulled["refused"], pulled["cursor"]) == (None, NOW.isoformat())
    assert outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3020001").body["status"] == "paid"
    (shown,) = run_json(capsys, "shops", "show", TAOBAO_SHOP)
    assert (shown["reconcile_cursor"], shown["backfill"]) == (NOW.isoformat(), None)
    # Nothing new: nothing healed, and said so in a table too.
    with time_machine.travel(NOW, tick=False):
        assert main(["reconcile", TAOBAO_SHOP, "--since", since]) == 0
    assert "0 healed" in capsys.readouterr().out


def test_reconcile_refuses_a_time_without_offset_and_a_shop_without_tokens(stack):
    with pytest.raises(SystemExit, match="offset"):
        main(["reconcile", TAOBAO_SHOP, "--since", "2026-11-20T10:00:00"])
    with pytest.raises(SystemExit, match="not connected with tokens"):
        main(["reconcile", TAOBAO_SHOP])


def test_simulate_thin_pushes_what_the_detail_calls_then_complete(outbound, simulator, capsys):
    """`simulate --thin`: trade contents without items, as ShopHook gets them; each
    answered 200 at once and completed by its queued detail call."""
    pushed: list[dict] = []

    def to_the_stack(request) -> tuple[int, dict, str]:
        pushed.append(json.loads(json.loads(request.body)["content"]))
        path = request.url.removeprefix("http://shophook.test")
        answer = outbound.request("POST", path, request.body, dict(request.headers))
        return answer.status, {}, json.dumps(answer.body)

    with responses.RequestsMock() as mock:
        mock.add_passthru(simulator)
        mock.add_callback(responses.POST, re.compile(r"http://shophook\.test/.*"), to_the_stack)
        argv = [
            "late-shipment",
            "--thin",
            "--simulator",
            simulator,
            "--url",
            "http://shophook.test",
        ]
        rows = run_json(capsys, "simulate", *argv)
    assert [row["status"] for row in rows] == [200, 200]
    assert pushed and all("items" not in content for content in pushed)
    assert outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3020001").status == 404
    drain(NOW)
    order = outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3020001").body
    assert (order["status"], len(order["items"])) == ("paid", 1)
