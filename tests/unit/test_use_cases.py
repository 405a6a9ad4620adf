"""The ingest and sweep use cases against the in-memory gateway (tests/fakes.py):
the whole path from a signed request to what is stored and sent, without AWS."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.domain.change import Receipt
from chalicelib.domain.ids import EntityRef
from chalicelib.domain.model import CaseState, DeadlineState, OrderState, ShopStatus
from chalicelib.domain.work import WorkKind
from chalicelib.platforms.base import InboundRequest
from chalicelib.service import ingest, sweep
from chalicelib.store.errors import ConditionFailedError
from simulator.scenarios import DEMO_CREDENTIALS, Message, taobao_order
from tests.fakes import InMemoryEntities, RecordingQueue
from tests.support import NOW, TAOBAO_SHOP

START = NOW - timedelta(hours=1)
ORDER = taobao_order("3010001", START)
CREATED, PAID, SHIPPED = ORDER[0], ORDER[1], ORDER[2]
REFUND_REQUESTED = ORDER[8]
ORDER_REF = EntityRef.order("taobao", "3010001")
CASE_REF = EntityRef.case("taobao", "R3010001")


def request_of(message: Message) -> InboundRequest:
    webhook = message.signed(DEMO_CREDENTIALS[message.platform], NOW)
    return InboundRequest(
        query=parse_qs(urlsplit(webhook.path).query, keep_blank_values=True),
        headers=webhook.headers,
        raw_body=webhook.body,
    )


@pytest.fixture
def store() -> InMemoryEntities:
    entities = InMemoryEntities()
    entities.connect(TAOBAO_SHOP)
    return entities


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


def receive(message: Message, store: InMemoryEntities, queue: RecordingQueue) -> ingest.Reply:
    return ingest.receive(message.platform, request_of(message), NOW, store, queue)


def test_a_new_message_is_stored_once_and_tells_its_events(store, queue):
    assert receive(PAID, store, queue).status == 200
    stored = store.entities[ORDER_REF]
    assert isinstance(stored.state, OrderState) and stored.version == 1
    assert store.told() == ["order.created", "order.paid"]
    # Told from the committed write's stream: nothing is queued on the request path.
    assert queue.sent == []
    assert store.log == [(ORDER_REF, PAID.message_id, Receipt.APPLIED)]


def test_the_same_message_again_is_acked_and_changes_nothing(store, queue):
    receive(PAID, store, queue)
    commits, told = store.commits, store.told()
    assert receive(PAID, store, queue).status == 200
    assert (store.commits, store.told()) == (commits, told)


def test_an_older_message_only_reaches_the_event_log(store, queue):
    receive(SHIPPED, store, queue)
    told = store.told()
    assert receive(CREATED, store, queue).status == 200
    assert store.entities[ORDER_REF].version == 1
    assert store.told() == told
    assert store.log[-1] == (ORDER_REF, CREATED.message_id, Receipt.STALE)


def test_a_message_for_a_disconnected_shop_is_acked_and_recorded_only(store, queue):
    store.connect(TAOBAO_SHOP, ShopStatus.DISCONNECTED)
    assert receive(PAID, store, queue).status == 200
    assert ORDER_REF not in store.entities
    assert store.log == [(ORDER_REF, PAID.message_id, Receipt.SHOP_NOT_CONNECTED)]


def test_a_well_signed_malformed_message_is_quarantined_not_applied(store, queue):
    bad = Message("taobao", "bad-1", PAID.topic, {**PAID.payload, "payment": "x"}, PAID.shop_ref)
    reply = receive(bad, store, queue)
    assert (reply.status, reply.body["field"]) == (422, "content.payment")
    assert store.quarantined == {"taobao#bad-1": {"field": "content.payment", "deliveries": 1}}
    assert (store.entities, queue.sent) == ({}, [])


def test_a_lost_race_is_decided_again_on_what_won_it(store, queue):
    receive(PAID, store, queue)
    races = []

    def someone_else_wrote_first(change):
        if not races:
            races.append(change)
            held = store.entities[ORDER_REF]
            store.entities[ORDER_REF] = type(held)(held.state, held.version + 1, held.case_ids)

    store.before_commit = someone_else_wrote_first
    assert receive(SHIPPED, store, queue).status == 200
    assert len(races) == 1 and store.entities[ORDER_REF].version == 3


def test_an_entity_that_keeps_changing_is_a_503_the_platform_retries(store, queue):
    receive(PAID, store, queue)

    def always_changed(change):
        raise ConditionFailedError("changed meanwhile")

    store.before_commit = always_changed
    reply = receive(SHIPPED, store, queue)
    assert (reply.status, reply.body["code"]) == (503, "storage_unavailable")
    assert not store.logged(ORDER_REF, SHIPPED.message_id)


def test_a_message_stored_meanwhile_by_another_delivery_is_a_duplicate(store, queue):
    def delivered_twice_at_once(change):
        store.log.append((ORDER_REF, PAID.message_id, Receipt.APPLIED))

    store.before_commit = delivered_twice_at_once
    assert receive(PAID, store, queue).status == 200
    assert (store.entities, queue.sent) == ({}, [])


def test_a_case_before_its_order_is_noted_on_a_bare_order_then_re_decided_with_it(store, queue):
    assert receive(REFUND_REQUESTED, store, queue).status == 200
    bare = store.entities[ORDER_REF]
    assert bare.state.snapshot is None and bare.case_ids == {"R3010001"}
    case = store.entities[CASE_REF].state
    assert isinstance(case, CaseState)
    unshipped_clock = {d.rule for d in case.deadlines}
    assert "platform.refund_unshipped_timeout" in unshipped_clock
    # The order's messages, shipped before the request, re-decide the case in the same change.
    for message in (PAID, SHIPPED):
        receive(message, store, queue)
    case = store.entities[CASE_REF].state
    rules = {d.rule for d in case.deadlines}
    assert "platform.refund_shipped_timeout" in rules
    assert "platform.refund_unshipped_timeout" not in rules


def test_a_thin_message_is_held_once_and_queues_one_fetch_changing_nothing(store, queue):
    thin = replace(PAID, thin=True)
    assert receive(thin, store, queue).status == 200
    assert store.entities == {}
    (fetch,) = queue.sent
    assert (fetch.kind, fetch.work_type, fetch.order_group) == (
        WorkKind.FETCH,
        "order",
        ORDER_REF.stream,
    )
    assert store.log == [(ORDER_REF, PAID.message_id, Receipt.FETCHING)]
    # Delivered again: a duplicate, acked, nothing queued.
    assert receive(thin, store, queue).status == 200
    assert len(queue.sent) == 1 and store.log == [(ORDER_REF, PAID.message_id, Receipt.FETCHING)]


def test_a_thin_refund_names_its_case_whatever_its_order(store, queue):
    assert receive(replace(REFUND_REQUESTED, thin=True), store, queue).status == 200
    assert [item.order_group for item in queue.sent] == [CASE_REF.stream]
    assert store.entities == {}


def test_the_sweep_breaches_what_is_due_and_tells_it_once(store, queue):
    receive(PAID, store, queue)
    told = len(store.told())
    later = NOW + timedelta(days=3)
    report = sweep.sweep(later, store)
    assert report.entities == 1
    assert store.told()[told:] == report.events
    assert "after_sale.deadline_breached" in report.events
    ship_by = next(
        d for d in store.entities[ORDER_REF].state.deadlines if d.rule == "platform.ship_by"
    )
    assert ship_by.state is DeadlineState.BREACHED
    told = len(store.told())
    assert sweep.sweep(later, store).due == 0 and len(store.told()) == told
