"""A push that carries an array of messages (Doudian-style, platforms.md 1.3):
each message stored once, the answer a success only when all are, a malformed
one quarantined and counted as stored, the URL check answered storing nothing."""

from __future__ import annotations

import json
from datetime import timedelta

from chalicelib.domain.model import CaseStatus
from chalicelib.platforms.doudian import push_sign
from chalicelib.service import quarantine
from chalicelib.store.records import EventLogRecord, QuarantineRecord
from simulator.platforms.doudian import signed_array
from simulator.scenarios import DEMO_CREDENTIALS, Message, doudian_order
from tests.support import DOUDIAN_SHOP, NOW

APP = DEMO_CREDENTIALS["doudian"]
STORY = doudian_order("4910001", NOW - timedelta(days=6))
REQUESTED, AGREED, RETURNED = (m for m in STORY if m.topic in ("200", "202", "203"))
CASE_PATH = f"/shops/{DOUDIAN_SHOP}/after-sales/49100017"
ACK = {"code": 0, "msg": "success"}


def raw_push(body: bytes):
    """A body signed as the platform signs it, whatever it holds."""
    sign = push_sign(APP.app_key, body, APP.app_secret)
    return {"Content-Type": "application/json", "app-id": APP.app_key, "event-sign": sign}


def test_each_message_of_an_array_is_stored_once_in_any_order(stack):
    answer = stack.send(signed_array([RETURNED, REQUESTED, AGREED, REQUESTED], APP))
    assert (answer.status, answer.body) == (200, ACK)
    assert EventLogRecord.count() == 3
    assert stack.get(CASE_PATH).body["status"] == CaseStatus.RETURNED
    # The platform redelivers the whole array: nothing changes.
    again = stack.send(signed_array([REQUESTED, AGREED, RETURNED], APP))
    assert (again.status, again.body) == (200, ACK)
    assert EventLogRecord.count() == 3


def test_the_url_check_is_answered_at_once_and_stores_nothing(stack):
    body = json.dumps([{"tag": "0", "msg_id": "check-1", "data": "{}"}]).encode()
    answer = stack.request("POST", "/webhooks/doudian", body, raw_push(body))
    assert (answer.status, answer.body) == (200, ACK)
    assert EventLogRecord.count() == 0 and QuarantineRecord.count() == 0


def test_a_malformed_message_is_quarantined_and_the_rest_of_the_array_stored(stack):
    bad = Message("doudian", "dd-bad-1", "202", {**AGREED.payload, "refund_amount": "lots"})
    answer = stack.send(signed_array([REQUESTED, bad, AGREED], APP))
    assert (answer.status, answer.body) == (200, ACK)
    assert EventLogRecord.count() == 2
    (held,) = list(QuarantineRecord.scan())
    assert (held.message_key, held.field) == ("doudian#dd-bad-1", "data.refund_amount")
    assert json.loads(held.raw_body)[0]["msg_id"] == "dd-bad-1"
    # Reprocessed as it is, it is still malformed: it stays in the quarantine.
    assert quarantine.reprocess(held, NOW) == 422
    assert QuarantineRecord.count() == 1


def test_a_message_that_is_not_one_is_quarantined_and_the_others_stored(stack):
    body = json.dumps([7, json.loads(signed_array([REQUESTED], APP).body)[0]]).encode()
    answer = stack.request("POST", "/webhooks/doudian", body, raw_push(body))
    assert (answer.status, answer.body) == (200, ACK)
    assert EventLogRecord.count() == 1 and QuarantineRecord.count() == 1


def test_a_push_that_is_not_an_array_is_quarantined_whole(stack):
    body = b'{"tag": "200"}'
    answer = stack.request("POST", "/webhooks/doudian", body, raw_push(body))
    assert (answer.status, answer.body["field"]) == (422, "body")
    assert answer.body["code"] == 1
    assert EventLogRecord.count() == 0 and QuarantineRecord.count() == 1


def test_a_push_signed_with_another_secret_is_refused_whole(stack):
    webhook = signed_array([REQUESTED, AGREED], APP)
    forged = {**webhook.headers, "event-sign": "0" * 32}
    answer = stack.request("POST", webhook.path, webhook.body, forged)
    assert answer.status == 401 and answer.body["code"] == 1
    assert EventLogRecord.count() == 0
