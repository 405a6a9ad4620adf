"""The seller console's use cases: sessions (one shop each, with a CSRF token),
what each page shows, and what its forms do. The shop always comes from the
session, never from a URL or a form; another shop's things are not found."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.domain.actions import Action, ReturnAddress, refusal
from chalicelib.domain.change import ShopSettings
from chalicelib.domain.ids import EntityKind, EntityRef
from chalicelib.domain.model import LANGUAGES, CaseState, OrderState, ShopStatus
from chalicelib.domain.policy import Policy, PolicyError
from chalicelib.domain.views import case_view, order_view
from chalicelib.domain.work import WorkKind, WorkState
from chalicelib.platforms import registry
from chalicelib.platforms.base import UnsupportedActionError
from chalicelib.policies import default_policy
from chalicelib.service import actions, keys, outbox, queries, shops
from chalicelib.service import subscriptions as shop_subscriptions
from chalicelib.service.errors import ForbiddenError, InvalidInputError, NotFoundError
from chalicelib.service.policy import for_shop
from chalicelib.store import entities, sessions, subscriptions, work
from chalicelib.store import keys as stored_keys
from chalicelib.store import shops as stored_shops
from chalicelib.store.pages import CursorRefusedError, decode_cursor
from chalicelib.store.records import ConsoleSessionRecord, ShopRecord

SESSION_IDLE = timedelta(hours=12)
# A session's expiry is pushed back at most this often (not a write per page).
TOUCH_AFTER = timedelta(minutes=10)
PAGE_SIZE = 25
NEEDS_YOU_NOW = 10
DUE_SOON = timedelta(hours=24)
AUTO_AGREE = "seller.auto_agree_unshipped_refund"


@dataclass(frozen=True)
class Session:
    record: ConsoleSessionRecord

    @property
    def shop_id(self) -> str:
        return self.record.shop_id

    @property
    def csrf_token(self) -> str:
        return self.record.csrf_token


def start(shop_id: str, now: datetime) -> str:
    """A new session for the shop, in the shop's language if it chose one (else
    the browser's); returns its cookie (256 random bits)."""
    shop = stored_shops.read(shop_id)
    language = shop.language if shop is not None else None
    cookie = secrets.token_urlsafe(32)
    sessions.save(
        ConsoleSessionRecord(
            sessions.session_hash(cookie),
            shop_id=shop_id,
            csrf_token=secrets.token_urlsafe(32),
            language=language,
            started_at=now,
            seen_at=now,
            expires_at=now + SESSION_IDLE,
        )
    )
    return cookie


def resume(cookie: str | None, now: datetime) -> Session | None:
    """The session a cookie names, if it is still live."""
    record = sessions.read(cookie) if cookie else None
    if record is None or record.expires_at <= now:
        return None
    if now - record.seen_at >= TOUCH_AFTER:
        sessions.touch(record, now, now + SESSION_IDLE)
    return Session(record)


def end(session: Session) -> None:
    sessions.end(session.record)


def check_csrf(session: Session, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, session.csrf_token):
        raise ForbiddenError(
            "csrf_refused", "this form is not from your console session: reload the page", "csrf"
        )


def set_language(session: Session, language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidInputError("invalid_language", f"choose one of {', '.join(LANGUAGES)}")
    sessions.set_language(session.record, language)


def language_of(session: Session | None, preferred: str) -> str:
    return (session.record.language if session else None) or preferred


def _shop(session: Session) -> ShopRecord:
    return shops.get(session.shop_id)


def _settings_of(shop: ShopRecord) -> ShopSettings:
    settings = entities.shop_settings(shop)
    assert settings is not None
    return settings


def _case_views(
    shop: ShopRecord, stored: list, language: str, now: datetime
) -> list[dict[str, Any]]:
    return [
        case_view(state, version, language)
        for state, version in queries.decided_cases(shop.shop_id, stored, now, _settings_of(shop))
    ]


def _start(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        return decode_cursor(cursor)
    except CursorRefusedError as refused:
        raise InvalidInputError("invalid_cursor", str(refused), "cursor") from None


def shop_view(shop: ShopRecord) -> dict[str, Any]:
    return {
        "shop_id": shop.shop_id,
        "platform": shop.platform,
        "name": shop.name or shop.shop_id,
        "needs_reconnect": shop.status == ShopStatus.NEEDS_RECONNECT,
    }


def dashboard(session: Session, language: str, now: datetime) -> dict[str, Any]:
    shop = _shop(session)
    counts = entities.counts(shop.shop_id, now + DUE_SOON)
    open_cases, _ = entities.open_cases_page(shop.shop_id, None, NEEDS_YOU_NOW, None)
    due_orders = [
        deadline
        for deadline in entities.pending_deadlines(shop.shop_id, None, NEEDS_YOU_NOW)
        if deadline.entity.kind is EntityKind.ORDER
    ]
    return {
        "shop": shop_view(shop),
        "counts": counts,
        "cases": _case_views(shop, open_cases, language, now),
        "orders": [
            {"order_id": d.entity.entity_id, "rule": d.rule, "due_at": d.due_at} for d in due_orders
        ],
    }


CASE_FILTERS = ("open", "all")


def after_sales(
    session: Session,
    status: str,
    due_within_hours: str,
    cursor: str | None,
    language: str,
    now: datetime,
) -> dict[str, Any]:
    """Open cases, nearest deadline first (those due within so many hours, if
    asked), or every case of the shop."""
    if status not in CASE_FILTERS:
        raise InvalidInputError("invalid_status", f"status is one of {', '.join(CASE_FILTERS)}")
    hours = (
        _whole_number(due_within_hours, "due_within", at_most=24 * 30) if due_within_hours else None
    )
    shop = _shop(session)
    if status == "open":
        due_before = now + timedelta(hours=hours) if hours is not None else None
        page, next_cursor = entities.open_cases_page(
            shop.shop_id, due_before, PAGE_SIZE, _start(cursor)
        )
    else:
        page, next_cursor = entities.cases_page(shop.shop_id, None, PAGE_SIZE, _start(cursor))
    return {
        "shop": shop_view(shop),
        "cases": _case_views(shop, page, language, now),
        "next_cursor": next_cursor,
        "status": status,
        "due_within": due_within_hours,
    }


def _whole_number(text: str, field: str, at_most: int) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= at_most:
        raise InvalidInputError(
            f"invalid_{field}", f"{field} is a whole number from 1 to {at_most}", field
        )
    return int(text)


ADDRESS_PARTS = ("name", "address", "mobile", "postcode")
REQUIRED_ADDRESS_PARTS = ("name", "address", "mobile")


def return_address(shop: ShopRecord) -> dict[str, str]:
    held = json.loads(shop.return_address) if shop.return_address else {}
    return {part: held.get(part, "") for part in ADDRESS_PARTS}


def _offered(case: CaseState, platform: str) -> tuple[list[str], dict[str, str]]:
    """The actions the case's state allows on its platform, and why the others
    that a seller might look for are not offered."""
    offered, why_not = [], {}
    placeholder = ReturnAddress("-", "-", "-", "-")
    for action in Action:
        reason = refusal(action, case.snapshot)
        if reason is None:
            try:
                registry()[platform].action_request(
                    case.shop_id, action, case.snapshot, "-", placeholder
                )
            except UnsupportedActionError as unsupported:
                reason = str(unsupported)
        if reason is None:
            offered.append(action.value)
        else:
            why_not[action.value] = reason
    return offered, why_not


def _action_view(row: Any) -> dict[str, Any]:
    payload = json.loads(row.payload)
    return {
        "action_id": row.outbox_id,
        "action": row.type,
        "state": row.state,
        "error": row.error,
        "created_at": row.created_at,
        "origin": payload.get("origin"),
    }


def case_page(session: Session, case_id: str, language: str, now: datetime) -> dict[str, Any]:
    shop = _shop(session)
    stored = queries.owned(shop.shop_id, EntityKind.CASE, case_id)
    [(state, version)] = queries.decided_cases(shop.shop_id, [stored], now, _settings_of(shop))
    ref = EntityRef.case(shop.platform, case_id)
    taken = [_action_view(row) for row in entities.actions_on(ref)]
    # Asked for since the platform last told us of the case: until it tells us
    # again, offering the buttons would only ask twice.
    awaiting = [
        action
        for action in taken
        if action["state"] in (WorkState.QUEUED, WorkState.SENT)
        and action["created_at"] >= state.snapshot.modified
    ]
    offered, why_not = ([], {}) if awaiting else _offered(state, shop.platform)
    return {
        "shop": shop_view(shop),
        "case": case_view(state, version, language),
        "offered": offered,
        "why_not": why_not,
        "awaiting": awaiting,
        "actions": taken,
        "timeline": queries.case_timeline(shop.shop_id, case_id),
        "return_address": return_address(shop),
    }


def _form_text(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def act(session: Session, case_id: str, form: Mapping[str, str], now: datetime) -> str:
    """Queue an action from the case page's form; returns its id."""
    address = {part: _form_text(form, f"return_{part}") for part in ADDRESS_PARTS}
    body = {
        "action": form.get("action", ""),
        "reason": _form_text(form, "reason"),
        "return_address": address if any(address.values()) else None,
    }
    from chalicelib.service.commands import ActionRequest, from_json

    command = from_json(ActionRequest, json.dumps(body).encode())
    return actions.request(session.shop_id, case_id, command, now)["action_id"]


def action_state(session: Session, action_id: str) -> dict[str, Any]:
    row = work.read(action_id)
    if row is None or row.kind != WorkKind.ACTION or row.shop_id != session.shop_id:
        raise NotFoundError("action_not_found", f"no action '{action_id}'")
    return {"action_id": row.outbox_id, "state": row.state, "error": row.error}


def orders(session: Session, cursor: str | None, language: str, now: datetime) -> dict[str, Any]:
    shop = _shop(session)
    page, next_cursor = entities.orders_page(shop.shop_id, PAGE_SIZE, _start(cursor))
    return {
        "shop": shop_view(shop),
        "orders": [
            order_view(stored.state, stored.version, language)
            for stored in page
            if isinstance(stored.state, OrderState) and stored.state.snapshot is not None
        ],
        "next_cursor": next_cursor,
    }


def order_page(session: Session, order_id: str, language: str, now: datetime) -> dict[str, Any]:
    shop = _shop(session)
    order = queries.order(shop.shop_id, order_id, language)
    ref = EntityRef.order(shop.platform, order_id)
    return {
        "shop": shop_view(shop),
        "order": order,
        "shippable": order["status"] in actions.SHIPPABLE,
        "actions": [_action_view(row) for row in entities.actions_on(ref)],
    }


def ship(session: Session, order_id: str, form: Mapping[str, str], now: datetime) -> str:
    body = {"tracking_no": form.get("tracking_no", ""), "carrier": form.get("carrier", "")}
    from chalicelib.service.commands import ShipRequest, from_json

    command = from_json(ShipRequest, json.dumps(body).encode())
    return actions.ship(session.shop_id, order_id, command, now)["action_id"]


# Settings


def settings_page(session: Session, language: str) -> dict[str, Any]:
    shop = _shop(session)
    policy = for_shop(shop)
    overrides = json.loads(shop.policy_overrides)
    adjustable = [
        {
            "rule": rule.id,
            "param": param,
            "value": rule.params[param],
            "overridden": param in overrides.get(rule.id, {}),
            "at_most": policy.bound(limit.at_most) if limit.at_most is not None else None,
            "at_least": policy.bound(limit.at_least) if limit.at_least is not None else None,
            "explanation": rule.explain(language),
        }
        for rule in policy.rules.values()
        if rule.layer == "seller" and rule.id != AUTO_AGREE
        for param, limit in rule.limits.items()
    ]
    limit = policy.value(f"{AUTO_AGREE}.max_amount_fen")
    return {
        "shop": shop_view(shop),
        "adjustable": adjustable,
        "auto_agree": limit > 0,
        "auto_agree_limit": f"{Decimal(limit) / 100:.2f}" if limit > 0 else "",
        "return_address": return_address(shop),
        "shop_language": shop.language or "",
    }


def _yuan_to_fen(text: str, field: str) -> int:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidInputError(
            f"invalid_{field}", "an amount in yuan above 0, like 50 or 49.90", field
        )
    return int(amount * 100)


def _overrides(form: Mapping[str, str], policy: Policy) -> dict[str, dict[str, Any]]:
    """The seller targets the form sets (an empty field keeps the default), and
    the automatic refunds' limit; PolicyError past a bound."""
    overrides: dict[str, dict[str, Any]] = {}
    for rule in policy.rules.values():
        for param in rule.limits:
            text = form.get(f"{rule.id}.{param}", "").strip()
            if rule.id == AUTO_AGREE or not text:
                continue
            if not text.isascii() or not text.lstrip("-").isdigit():
                raise InvalidInputError("invalid_setting", "a whole number", f"{rule.id}.{param}")
            overrides.setdefault(rule.id, {})[param] = int(text)
    if form.get("auto_agree") == "on":
        limit = _yuan_to_fen(form.get("auto_agree_limit", "").strip(), "auto_agree_limit")
        overrides[AUTO_AGREE] = {"max_amount_fen": limit}
    policy.with_overrides(overrides)
    return overrides


def _address(form: Mapping[str, str]) -> dict[str, str] | None:
    """The return address the form gives: none, or all of what it needs."""
    address = {part: form.get(f"return_{part}", "").strip() for part in ADDRESS_PARTS}
    missing = [part for part in REQUIRED_ADDRESS_PARTS if not address[part]]
    if not any(address.values()):
        return None
    if missing:
        raise InvalidInputError(
            "invalid_return_address",
            "a return address needs a name, an address and a mobile number",
            f"return_{missing[0]}",
        )
    return address


def save_settings(session: Session, form: Mapping[str, str]) -> None:
    """Check every field, then save them together: nothing is half-saved."""
    shop = _shop(session)
    try:
        overrides = _overrides(form, default_policy(shop.platform))
    except PolicyError as error:
        raise InvalidInputError("policy_not_allowed", error.message, error.where) from None
    address = _address(form)
    language = form.get("language", "")
    if language and language not in LANGUAGES:
        raise InvalidInputError("invalid_language", f"one of {', '.join(LANGUAGES)}", "language")
    shop.policy_overrides = json.dumps(overrides)
    shop.return_address = json.dumps(address, ensure_ascii=False) if address else None
    shop.language = language or None
    stored_shops.save(shop)
    if language:
        sessions.set_language(session.record, language)


# Integrations


def integrations(session: Session, now: datetime) -> dict[str, Any]:
    shop = _shop(session)
    return {
        "shop": shop_view(shop),
        "keys": [
            {
                "key_id": record.key_id,
                "name": record.name,
                "created_at": record.created_at,
                "revoked_at": record.revoked_at,
            }
            for record in stored_keys.of_owner_shop(shop.shop_id)
        ],
        "subscriptions": shop_subscriptions.on_shop(shop.shop_id),
    }


MAX_KEY_NAME = 80


def create_key(session: Session, form: Mapping[str, str], now: datetime) -> dict[str, str]:
    """A key for this shop only, returned this once (only its hash is kept)."""
    name = form.get("name", "").strip()
    if not name or len(name) > MAX_KEY_NAME:
        raise InvalidInputError("invalid_name", f"a name of 1 to {MAX_KEY_NAME} characters", "name")
    key_id, key = keys.create_key(name, [session.shop_id], now, owner_shop=session.shop_id)
    return {"key_id": key_id, "key": key, "name": name}


def revoke_key(session: Session, key_id: str, now: datetime) -> None:
    owned = {record.key_id for record in stored_keys.of_owner_shop(session.shop_id)}
    if key_id not in owned:
        raise NotFoundError("key_not_found", f"no key '{key_id}' for this shop")
    keys.revoke(key_id, now)


def replay(session: Session, subscription_id: str, form: Mapping[str, str], now: datetime) -> int:
    """Deliver again this shop's events to a subscription on it, since a time."""
    routed = {route.subscription_id for route in subscriptions.routes(session.shop_id)}
    if subscription_id not in routed:
        raise NotFoundError("subscription_not_found", f"no subscription '{subscription_id}'")
    hours = _whole_number(form.get("hours", "").strip(), "hours", at_most=24 * 14)
    rows = subscriptions.deliveries_between(
        subscription_id, now - timedelta(hours=hours), None, 1000
    )
    return len(outbox.again([row for row in rows if row.shop_id == session.shop_id], now))
