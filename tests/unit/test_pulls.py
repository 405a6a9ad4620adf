"""Reconciliation pulls, the pure part (domain/pulls.py) and the store-once path
a pulled record takes (service/ingest.store_once against the in-memory gateway)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.change import Receipt
from chalicelib.domain.pulls import BACKFILL, OVERLAP, WINDOW, Backfill, pull_start, pulled_record
from chalicelib.domain.pulls import windows as windows_between
from chalicelib.service.ingest import store_once
from simulator.scenarios import taobao_order
from tests.fakes import InMemoryEntities
from tests.support import NOW, TAOBAO_SHOP, parsed

PAID = parsed(taobao_order("3900001", NOW - timedelta(hours=2))[1])


@given(
    behind=st.integers(0, 3 * 24 * 3600),
    extra_seconds=st.integers(0, 59),
)
def test_windows_cover_cursor_to_now_at_most_30_minutes_each_overlapping(behind, extra_seconds):
    cursor = NOW - timedelta(seconds=behind, microseconds=extra_seconds)
    found = list(windows_between(cursor, NOW))
    if cursor >= NOW:
        assert found == []
        return
    assert found[0].start == cursor - OVERLAP
    assert found[-1].end == NOW
    assert all(w.start < w.end and w.end - w.start <= WINDOW for w in found)
    assert all(b.start == a.end - OVERLAP for a, b in pairwise(found))


def test_a_pull_starts_at_the_cursor_or_the_connect_but_never_more_than_30_days_back():
    connected = NOW - timedelta(days=2)
    assert pull_start(None, connected, NOW) == connected
    assert pull_start(NOW - timedelta(hours=1), connected, NOW) == NOW - timedelta(hours=1)
    assert pull_start(NOW - timedelta(days=90), connected, NOW) == NOW - BACKFILL


def test_backfill_progress_runs_from_0_to_1():
    backfill = Backfill(NOW - BACKFILL, NOW)
    assert backfill.progress(None) == 0.0
    assert backfill.progress(NOW - BACKFILL / 4) == 0.75
    assert backfill.progress(NOW + timedelta(hours=1)) == 1.0


def test_a_pulled_record_is_named_by_its_entity_and_modified():
    first = pulled_record("taobao", TAOBAO_SHOP, "taobao.trades.sold.increment.get", PAID.event)
    again = pulled_record("taobao", TAOBAO_SHOP, "taobao.trades.sold.increment.get", PAID.event)
    assert first == again and first.pulled
    later = replace(PAID.event, modified=PAID.event.modified + timedelta(seconds=1))
    assert pulled_record("taobao", TAOBAO_SHOP, "t", later).message_id != first.message_id


def test_a_pulled_record_held_already_changes_nothing_and_writes_nothing():
    store = InMemoryEntities()
    store.connect(TAOBAO_SHOP)
    assert store_once(PAID, NOW, store)[0] is Receipt.APPLIED
    pulled = pulled_record("taobao", TAOBAO_SHOP, "listing", PAID.event)
    assert store_once(pulled, NOW, store) == (Receipt.DUPLICATE, [])
    # A pushed message that changes nothing is still noted (its redelivery is then a
    # read); a pulled one is not: the state itself says it is held.
    assert store.commits == 1


def test_a_pulled_record_that_heals_is_stored_once_with_its_events():
    store = InMemoryEntities()
    store.connect(TAOBAO_SHOP)
    pulled = pulled_record("taobao", TAOBAO_SHOP, "listing", PAID.event)
    assert store_once(pulled, NOW, store) == (Receipt.APPLIED, [])
    assert store.told() == ["order.created", "order.paid"]
    assert store_once(pulled, NOW, store) == (Receipt.DUPLICATE, [])
    # The push that was late, not lost, arrives after the pull: stale, no events.
    assert store_once(PAID, NOW, store) == (Receipt.STALE, [])
    assert store.told() == ["order.created", "order.paid"]
