"""Replay and tampering at the webhook routes: each signed field altered or
dropped one at a time, replays, clock skew at the window's edges, oversized
bodies, wrong content types, invalid UTF-8 and deeply nested JSON. A refused
message leaves no trace in the state; a well-signed malformed one is
quarantined; an acknowledged one is never lost."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

import pytest

from chalicelib.domain.ids import platform_key
from chalicelib.platforms.wire import format_wire_time
from chalicelib.store.records import EventLogRecord, QuarantineRecord
from simulator.scenarios import (
    DEMO_CREDENTIALS,
    DEMO_TAOBAO_USER_ID,
    Message,
    doudian_order,
    jd_order,
    taobao_order,
)
from simulator.webhooks import SignedWebhook
from tests.reliability.ledger import Ledger
from tests.support import (
    DOUDIAN_SHOP,
    JD_SHOP,
    NOW,
    TAOBAO_SHOP,
    oracle_signed_jd,
    oracle_signed_taobao,
)

WINDOW = timedelta(minutes=10)
FIRST = {"taobao": taobao_order("3700001", NOW - timedelta(days=1))[0]}
FIRST["jd"] = jd_order("3700002", NOW - timedelta(days=1))[0]
# Doudian-style trade messages are thin: its after-sale request is what shows at once.
FIRST["doudian"] = next(
    m for m in doudian_order("3700003", NOW - timedelta(days=7)) if m.topic == "200"
)
ORDER_PATH = {
    "taobao": f"/shops/{TAOBAO_SHOP}/orders/3700001",
    "jd": f"/shops/{JD_SHOP}/orders/3700002",
    "doudian": f"/shops/{DOUDIAN_SHOP}/after-sales/37000037",
}
# Platforms whose pushes carry a timestamp (Doudian-style ones carry none).
TIMED = ["taobao", "jd"]


def signed(platform: str, sent_at=NOW) -> SignedWebhook:
    return FIRST[platform].signed(DEMO_CREDENTIALS[platform], sent_at)


def signed_fields(webhook: SignedWebhook) -> dict[str, str]:
    """The signed fields: in the query string when there is one (the body is then
    signed as it is), else the form body."""
    query = webhook.path.partition("?")[2]
    return dict(parse_qsl(query or webhook.body.decode(), keep_blank_values=True))


def with_fields(webhook: SignedWebhook, fields: dict[str, str]) -> SignedWebhook:
    path, _, query = webhook.path.partition("?")
    if query:
        path, body = f"{path}?{urlencode(fields)}", webhook.body
    else:
        body = urlencode(fields).encode()
    return SignedWebhook(webhook.platform, webhook.message_id, path, webhook.headers, body)


def tamperings(webhook: SignedWebhook) -> list[tuple[str, SignedWebhook]]:
    """Every signed field altered, then dropped, one at a time; a field added; every
    signed header altered and dropped (Doudian-style: the app and the sign); and a
    body signed beside the query string or the headers altered."""
    form = webhook.headers.get("Content-Type") == "application/x-www-form-urlencoded"
    fields = signed_fields(webhook) if form or "?" in webhook.path else {}
    variants = []
    for name, value in fields.items():
        altered = alter(value)
        variants.append((f"{name} altered", with_fields(webhook, {**fields, name: altered})))
        dropped = {other: v for other, v in fields.items() if other != name}
        variants.append((f"{name} dropped", with_fields(webhook, dropped)))
    if fields:
        variants.append(("a field added", with_fields(webhook, {**fields, "extra": "1"})))
    for name, value in webhook.headers.items():
        if name == "Content-Type":
            continue
        for change, headers in (
            ("altered", {**webhook.headers, name: alter(value)}),
            ("dropped", {other: v for other, v in webhook.headers.items() if other != name}),
        ):
            variants.append(
                (
                    f"header {name} {change}",
                    SignedWebhook(webhook.platform, "x", webhook.path, headers, webhook.body),
                )
            )
    if not form:
        flipped = webhook.body.replace(b"370000", b"370009", 1)
        variants.append(
            (
                "body altered",
                SignedWebhook(webhook.platform, "x", webhook.path, webhook.headers, flipped),
            )
        )
    return variants


def alter(value: str) -> str:
    return value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"


def nothing_stored(platform: str, stack) -> bool:
    return (
        stack.get(ORDER_PATH[platform]).status == 404
        and EventLogRecord.count() == 0
        and QuarantineRecord.count() == 0
    )


@pytest.mark.parametrize("platform", sorted(FIRST))
def test_every_signed_field_altered_or_dropped_is_refused_and_stores_nothing(
    shared_stack, tally, platform
):
    shared_stack.reset()
    for change, webhook in tamperings(signed(platform)):
        answer = shared_stack.send(webhook)
        tally.inputs += 1
        assert answer.status in (400, 401), (change, answer.body)
        assert answer.body["code"] and answer.body["msg"], change
    assert nothing_stored(platform, shared_stack)


@pytest.mark.parametrize("platform", sorted(FIRST))
def test_a_replayed_message_changes_the_state_once(shared_stack, tally, platform):
    shared_stack.reset()
    ledger = Ledger(tally)
    webhook = signed(platform)
    for _ in range(10):
        assert ledger.send(shared_stack, webhook).status == 200
    assert shared_stack.get(ORDER_PATH[platform]).body["version"] == 1
    assert EventLogRecord.count() == 1
    assert ledger.lost() == []


@pytest.mark.parametrize("platform", TIMED)
@pytest.mark.parametrize(
    ("skew", "accepted"),
    [
        (WINDOW, True),
        (-WINDOW, True),
        (WINDOW + timedelta(seconds=1), False),
        (-WINDOW - timedelta(seconds=1), False),
    ],
)
def test_clock_skew_is_accepted_to_the_windows_edge_and_not_a_second_past(
    shared_stack, tally, platform, skew, accepted
):
    shared_stack.reset()
    answer = shared_stack.send(signed(platform, NOW + skew))
    tally.inputs += 1
    if accepted:
        assert answer.status == 200
    else:
        assert (answer.status, answer.body["code"]) == (401, "stale_timestamp")
        assert nothing_stored(platform, shared_stack)


def test_a_body_over_the_limit_is_413_and_one_at_it_is_read(shared_stack, tally):
    shared_stack.reset()
    limit = 256 * 1024
    over = shared_stack.send(oracle_signed_taobao(b" " * (limit + 1)))
    at_limit = shared_stack.send(oracle_signed_taobao(b"{}" + b" " * (limit - 2)))
    tally.inputs += 2
    assert (over.status, over.body["code"]) == (413, "body_too_large")
    assert (at_limit.status, at_limit.body["code"]) == (422, "malformed_message")


def quarantined(platform: str, identity: str) -> QuarantineRecord:
    return QuarantineRecord.get(platform_key(platform, identity))


DEEP = "[" * 20_000 + "]" * 20_000  # under the size limit even url-encoded


def test_invalid_utf8_and_deep_json_are_quarantined_by_name_never_applied(shared_stack, tally):
    shared_stack.reset()
    cases = [
        (b'{"id": "\xff\xfe", "topic": "x"}', "body"),
        (DEEP.encode(), "body"),
        (
            json.dumps(
                {
                    "id": "deep-content",
                    "topic": "taobao_trade_TradeCreate",
                    "user_id": DEMO_TAOBAO_USER_ID,
                    "user_nick": "x",
                    "pub_time": format_wire_time(NOW),
                    "content": DEEP,
                }
            ).encode(),
            "content",
        ),
    ]
    for body, field in cases:
        answer = shared_stack.send(oracle_signed_taobao(body))
        tally.inputs += 1
        assert (answer.status, answer.body["field"]) == (422, field), answer.body
        identity = (
            "deep-content" if field == "content" else "sha256:" + hashlib.sha256(body).hexdigest()
        )
        assert quarantined("taobao", identity).field == field
    jd = shared_stack.send(oracle_signed_jd("jd_pop_order_pay", "deep-1", DEEP))
    tally.inputs += 1
    assert (jd.status, jd.body["field"]) == (422, "360buy_param_json"), jd.body
    assert quarantined("jd", "deep-1").deliveries == 1
    assert EventLogRecord.count() == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "", "multipart/form-data"]
)
def test_the_content_type_is_not_trusted_the_signed_bytes_decide(shared_stack, tally, content_type):
    shared_stack.reset()
    ledger = Ledger(tally)
    for platform in sorted(FIRST):
        webhook = signed(platform)
        relabelled = SignedWebhook(
            platform,
            webhook.message_id,
            webhook.path,
            {**webhook.headers, "Content-Type": content_type},
            webhook.body,
        )
        assert ledger.send(shared_stack, relabelled).status == 200
        assert shared_stack.get(ORDER_PATH[platform]).status == 200
    assert ledger.lost() == []


def test_a_replay_captured_outside_the_window_is_refused(shared_stack, tally):
    shared_stack.reset()
    old = Message("taobao", "old-1", "taobao_trade_TradeCreate", {}, DEMO_TAOBAO_USER_ID)
    captured = old.signed(DEMO_CREDENTIALS["taobao"], NOW - timedelta(hours=1))
    answer = shared_stack.send(captured)
    tally.inputs += 1
    assert (answer.status, answer.body["code"]) == (401, "stale_timestamp")
    assert EventLogRecord.count() == 0
