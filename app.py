"""ShopHook's HTTP API on Chalice. Thin: read the request, call a use case, shape the answer."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from typing import Any

from chalice import Chalice, Rate, Response
from chalice.app import SQSEvent

from chalicelib import policies
from chalicelib.config import public_url
from chalicelib.domain.views import preferred_language
from chalicelib.observability import logger
from chalicelib.platforms.base import InboundRequest
from chalicelib.service import (
    actions,
    deliver,
    ingest,
    keys,
    oauth,
    outbox,
    pages,
    policy,
    queries,
    shops,
    subscriptions,
    sweep,
    tokens,
)
from chalicelib.service.errors import ApiError, StorageUnavailableError
from chalicelib.store.queues import DELIVERIES, OUTBOX

app = Chalice(app_name="shophook")
policies.load_all()
JSON = {"Content-Type": "application/json"}


def route(path: str, method: str) -> Callable[[Callable[..., Any]], Any]:
    """Every route takes any content type: the ones that read a body check it in
    `_json_body`, so a wrong one gets ShopHook's error shape, not Chalice's."""
    return app.route(path, methods=[method], content_types=["*/*"])


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=status, headers=JSON)


@app.middleware("all")
def fresh_log_context(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Each invocation starts its log lines without the previous one's keys."""
    logger.clear_state()
    return get_response(event)


def answers_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Every client error becomes its specific 4xx; storage trouble a 503 the caller
    may retry. (Chalice turns exceptions into 500s before any middleware sees them.)"""

    @functools.wraps(view)
    def answering(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except ApiError as error:
            return _json(error.status, error.body())
        except StorageUnavailableError:
            logger.exception("storage unavailable")
            return _json(503, {"code": "storage_unavailable", "message": "try again shortly"})

    return answering


def _authorized_shop(shop_id: str) -> str:
    """Check the caller's key covers the shop; return the reader's language."""
    headers = app.current_request.headers
    keys.require_shop(keys.authenticate(headers.get("authorization")), shop_id)
    return preferred_language(headers.get("accept-language"))


@route("/health", "GET")
def health() -> dict[str, str]:
    return {"status": "ok"}


# A wrong content type is answered in the platform's own error shape, after the
# signature check.
@route("/webhooks/{platform}", "POST")
@answers_errors
def receive_webhook(platform: str) -> Response:
    request = app.current_request
    query = request.query_params
    reply = ingest.receive(
        platform,
        InboundRequest(
            query={name: query.getlist(name) for name in query} if query else {},
            headers=dict(request.headers),
            raw_body=request.raw_body or b"",
        ),
        now=datetime.now(UTC),
    )
    return _json(reply.status, reply.body)


@route("/shops/{shop_id}/orders/{order_id}", "GET")
@answers_errors
def get_order(shop_id: str, order_id: str) -> dict[str, Any]:
    return queries.order(shop_id, order_id, _authorized_shop(shop_id))


@route("/shops/{shop_id}/after-sales", "GET")
@answers_errors
def list_after_sales(shop_id: str) -> dict[str, Any]:
    language = _authorized_shop(shop_id)
    params = app.current_request.query_params or {}
    return queries.cases(
        shop_id,
        params.get("status"),
        params.get("limit"),
        params.get("cursor"),
        language,
        datetime.now(UTC),
    )


@route("/shops/{shop_id}/after-sales/{case_id}", "GET")
@answers_errors
def get_after_sale(shop_id: str, case_id: str) -> dict[str, Any]:
    return queries.case(shop_id, case_id, _authorized_shop(shop_id), datetime.now(UTC))


@route("/shops/{shop_id}/deadlines", "GET")
@answers_errors
def list_deadlines(shop_id: str) -> dict[str, Any]:
    _authorized_shop(shop_id)
    params = app.current_request.query_params or {}
    return queries.deadlines(shop_id, params.get("before"), params.get("limit"))


@route("/shops/{shop_id}/policy", "GET")
@answers_errors
def get_policy(shop_id: str) -> dict[str, Any]:
    return policy.show(shop_id, _authorized_shop(shop_id))


@route("/shops/{shop_id}/policy", "PUT")
@answers_errors
def put_policy(shop_id: str) -> dict[str, Any]:
    language = _authorized_shop(shop_id)
    return policy.update(shop_id, _json_body(), language)


def _json_body() -> Any:
    sent_as = app.current_request.headers.get("content-type", "application/json")
    if sent_as.partition(";")[0].strip().lower() != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "send the body as application/json", "Content-Type"
        )
    try:
        return json.loads(app.current_request.raw_body or b"")
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not JSON", "body") from None


@route("/shops/{shop_id}/after-sales/{case_id}/actions", "POST")
@answers_errors
def request_action(shop_id: str, case_id: str) -> Response:
    _authorized_shop(shop_id)
    return _json(202, actions.request(shop_id, case_id, _json_body(), datetime.now(UTC)))


@route("/shops/{shop_id}/after-sales/{case_id}/actions/{action_id}", "GET")
@answers_errors
def get_action(shop_id: str, case_id: str, action_id: str) -> dict[str, Any]:
    _authorized_shop(shop_id)
    shown = actions.show(shop_id, action_id)
    if shown.get("case_id") != case_id:
        raise ApiError(404, "action_not_found", f"no action '{action_id}' on case '{case_id}'")
    return shown


@route("/shops/{shop_id}/orders/{order_id}/ship", "POST")
@answers_errors
def ship_order(shop_id: str, order_id: str) -> Response:
    _authorized_shop(shop_id)
    return _json(202, actions.ship(shop_id, order_id, _json_body(), datetime.now(UTC)))


def _integrator() -> Any:
    return keys.authenticate(app.current_request.headers.get("authorization"))


@route("/subscriptions", "POST")
@answers_errors
def create_subscription() -> Response:
    return _json(201, subscriptions.create(_integrator(), _json_body(), datetime.now(UTC)))


@route("/subscriptions", "GET")
@answers_errors
def list_subscriptions() -> dict[str, Any]:
    return subscriptions.listing(_integrator())


@route("/subscriptions/{subscription_id}", "GET")
@answers_errors
def get_subscription(subscription_id: str) -> dict[str, Any]:
    return subscriptions.show(_integrator(), subscription_id)


@route("/subscriptions/{subscription_id}", "DELETE")
@answers_errors
def delete_subscription(subscription_id: str) -> Response:
    subscriptions.delete(_integrator(), subscription_id)
    return Response(body="", status_code=204)


@route("/subscriptions/{subscription_id}/deliveries", "GET")
@answers_errors
def list_deliveries(subscription_id: str) -> dict[str, Any]:
    params = app.current_request.query_params or {}
    return subscriptions.deliveries(
        _integrator(), subscription_id, params.get("limit"), params.get("cursor")
    )


@route("/subscriptions/{subscription_id}/replay", "POST")
@answers_errors
def replay_deliveries(subscription_id: str) -> Response:
    key = _integrator()
    return _json(202, deliver.replay(key, subscription_id, _json_body(), datetime.now(UTC)))


@route("/shops/{shop_id}/disconnect", "POST")
@answers_errors
def disconnect_shop(shop_id: str) -> dict[str, str]:
    _authorized_shop(shop_id)
    shop = shops.disconnect(shop_id)
    return {"shop_id": shop.shop_id, "status": shop.status}


def _page(status: int, html: str, cookie: str) -> Response:
    return Response(
        body=html,
        status_code=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Set-Cookie": cookie,
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


def _cookie(value: str, max_age: int) -> str:
    secure = "; Secure" if (public_url() or "").startswith("https://") else ""
    return f"{oauth.COOKIE}={value}; Max-Age={max_age}; Path=/oauth; HttpOnly; SameSite=Lax{secure}"


@route("/oauth/{platform}/connect", "GET")
def connect_shop(platform: str) -> Response:
    try:
        started = oauth.start(platform, datetime.now(UTC))
    except oauth.ConnectError as error:
        return _page(error.status, pages.page(error.title, error.message, ok=False), _cookie("", 0))
    except StorageUnavailableError:
        return _page(
            503, pages.page("Please try again", "ShopHook is busy.", ok=False), _cookie("", 0)
        )
    lifetime = int(oauth.STATE_LIFETIME.total_seconds())
    return Response(
        body="",
        status_code=302,
        headers={
            "Location": started.authorize_url,
            "Set-Cookie": _cookie(started.browser_nonce, lifetime),
            "Cache-Control": "no-store",
        },
    )


@route("/oauth/{platform}/callback", "GET")
def finish_connect(platform: str) -> Response:
    request = app.current_request
    jar = SimpleCookie()
    try:
        jar.load(request.headers.get("cookie", ""))
    except CookieError:
        jar.clear()
    nonce = jar[oauth.COOKIE].value if oauth.COOKIE in jar else None
    query = {name: request.query_params.get(name, "") for name in (request.query_params or {})}
    spent = _cookie("", 0)
    try:
        shop = oauth.finish(platform, query, nonce, datetime.now(UTC))
    except oauth.ConnectError as error:
        return _page(error.status, pages.page(error.title, error.message, ok=False), spent)
    except StorageUnavailableError:
        return _page(503, pages.page("Please try again", "ShopHook is busy.", ok=False), spent)
    html = pages.page(
        "Shop connected",
        "ShopHook now receives this shop's orders and after-sales requests.",
        ok=True,
        details={
            "Shop": shop.name or shop.shop_id,
            "ShopHook id": shop.shop_id,
            "Webhooks": f"{public_url()}/webhooks/{platform}",
        },
    )
    return _page(200, html, spent)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep_deadlines(event: Any) -> dict[str, int]:
    """Warn at 75% of each window, breach at its end: only due deadlines are read."""
    report = sweep.sweep(datetime.now(UTC))
    return {"due": report.due, "entities": report.entities, "events": len(report.events)}


@app.schedule(Rate(15, unit=Rate.MINUTES))
def refresh_tokens(event: Any) -> dict[str, list[str]]:
    """Refresh shops' tokens two hours before they expire."""
    report = tokens.refresh_due(datetime.now(UTC))
    return {"refreshed": report.refreshed, "failed": report.failed}


@app.schedule(Rate(2, unit=Rate.MINUTES))
def requeue_outbox(event: Any) -> dict[str, int]:
    """Send again outbox rows whose enqueue failed after their commit."""
    return {"requeued": outbox.requeue(datetime.now(UTC))}


# One message per invocation: a slow platform or subscriber delays nothing else.
@app.on_sqs_message(queue=OUTBOX.queue_name(), batch_size=1)
def deliver_outbox(event: SQSEvent) -> dict[str, Any]:
    """Platform actions, and events fanned out to their subscriptions."""
    return deliver.consume(OUTBOX, event.to_dict(), datetime.now(UTC))


@app.on_sqs_message(queue=DELIVERIES.queue_name(), batch_size=1)
def deliver_webhooks(event: SQSEvent) -> dict[str, Any]:
    """One event to one integrator, signed per Standard Webhooks."""
    return deliver.consume(DELIVERIES, event.to_dict(), datetime.now(UTC))
