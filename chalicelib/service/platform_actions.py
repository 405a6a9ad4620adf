"""Actions for the platform's API: one call per attempt, with the shop's token
refreshed once if the platform says the session is invalid. The row is marked
before each call, so an answer that is lost (no answer, or its record failing)
does not make a retry do the step twice: the platform's "already done" then
means ours."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from time import perf_counter

from chalicelib.domain.actions import Action, ReturnAddress
from chalicelib.domain.change import Stored
from chalicelib.domain.ids import EntityRef, platform_of
from chalicelib.domain.model import CaseState
from chalicelib.domain.work import AttemptResult, Tried
from chalicelib.observability import tracer
from chalicelib.platforms import registry
from chalicelib.platforms.api import CallOutcome, CallResult
from chalicelib.platforms.base import Platform, UnsupportedActionError
from chalicelib.service import tokens
from chalicelib.settings import settings
from chalicelib.store import entities, work
from chalicelib.store.records import OutboxRecord

SHIP = "ship"
NO_REFRESH = (
    "the platform refused the shop's session and the token could not be refreshed: "
    "the seller must reconnect the shop"
)


def _outcome(answer: CallResult, earlier_call_unresolved: bool) -> Tried:
    text = f"{answer.code}: {answer.message}" if answer.code or answer.message else None
    if answer.outcome is CallOutcome.SUCCESS:
        return Tried(AttemptResult.DONE)
    if answer.outcome is CallOutcome.ALREADY_DONE and earlier_call_unresolved:
        return Tried(
            AttemptResult.DONE,
            f"the platform had already done it: an earlier answer was lost ({text})",
        )
    if answer.outcome is CallOutcome.RETRYABLE:
        return Tried(AttemptResult.RETRY, text)
    if answer.outcome is CallOutcome.REFRESH_TOKEN:
        return Tried(
            AttemptResult.FAILED, f"the session is still refused after a token refresh ({text})"
        )
    return Tried(AttemptResult.FAILED, text)


@tracer.capture_method(capture_response=False)
def attempt(row: OutboxRecord, now: datetime) -> Tried:
    """One attempt at the action; ConditionFailedError if the row moved on meanwhile."""
    earlier_call_unresolved = row.call_unresolved_since is not None
    tried = _try(row, earlier_call_unresolved, now)
    return replace(tried, uncertain=tried.uncertain or earlier_call_unresolved)


def _request(platform: Platform, shop_id: str, payload: dict, subject: Stored) -> tuple[str, dict]:
    if payload["action"] == SHIP:
        return platform.ship_request(
            payload["order_id"], payload["tracking_no"], payload["carrier"]
        )
    address = payload.get("return_address")
    case = subject.state
    assert isinstance(case, CaseState)
    return platform.action_request(
        shop_id,
        Action(payload["action"]),
        case.snapshot,
        payload.get("reason") or "",
        ReturnAddress(**address) if address else None,
    )


def _try(row: OutboxRecord, earlier_call_unresolved: bool, now: datetime) -> Tried:
    payload = json.loads(row.payload)
    platform_name = platform_of(row.shop_id)
    platform = registry()[platform_name]
    subject_ref = (
        EntityRef.order(platform_name, payload["order_id"])
        if payload["action"] == SHIP
        else EntityRef.case(platform_name, payload["case_id"])
    )
    shop, subject = entities.shop_and_entity(row.shop_id, subject_ref)
    if shop is None or shop.sealed_tokens is None:
        return Tried(
            AttemptResult.FAILED, "the shop is not connected: the seller must reconnect it"
        )
    if subject is None:
        return Tried(AttemptResult.FAILED, f"{subject_ref.entity_id} is no longer known")
    try:
        method, business = _request(platform, row.shop_id, payload, subject)
    except UnsupportedActionError as error:
        return Tried(AttemptResult.FAILED, str(error))
    configured = settings().platform(platform_name)
    if configured.credentials is None or configured.api_url is None:
        return Tried(
            AttemptResult.RETRY, f"no {platform_name} API URL or app credentials are configured"
        )
    # Opened first: a KMS failure then leaves the row as it was, with no call made.
    access_token = tokens.unsealed(shop).access_token
    work.note_call(row, now)
    started = perf_counter()
    answer = platform.call(
        configured.api_url, configured.credentials, access_token, method, business, now
    )
    if answer.outcome is CallOutcome.REFRESH_TOKEN:
        if not tokens.refresh_shop(shop, now):
            return Tried(AttemptResult.FAILED, NO_REFRESH)
        access_token = tokens.unsealed(shop).access_token
        answer = platform.call(
            configured.api_url, configured.credentials, access_token, method, business, now
        )
    tried = _outcome(answer, earlier_call_unresolved)
    return replace(tried, latency_ms=(perf_counter() - started) * 1000, uncertain=answer.uncertain)
