"""ShopHook's HTTP API on Chalice. Thin: read the request into a typed command,
call a use case, shape the answer. HTTP statuses live here and nowhere else."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from typing import Any

from chalice import Chalice, Rate, Response
from chalice.app import SQSEvent
from pydantic import BaseModel

from chalicelib import openapi, policies
from chalicelib.domain.views import preferred_language
from chalicelib.observability import logger
from chalicelib.openapi import Operation
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
from chalicelib.service.answers import (
    ActionAnswer,
    ActionQueuedAnswer,
    CaseAnswer,
    CaseListAnswer,
    DeadlineListAnswer,
    DeliveryListAnswer,
    DisconnectedAnswer,
    HealthAnswer,
    OpenApiAnswer,
    OrderAnswer,
    PolicyAnswer,
    ReplayedAnswer,
    SecretAnswer,
    SubscriptionAnswer,
    SubscriptionCreatedAnswer,
    SubscriptionListAnswer,
)
from chalicelib.service.commands import (
    ActionRequest,
    CaseListQuery,
    Command,
    DeadlineQuery,
    DeliveryListQuery,
    PolicyRequest,
    Query,
    ReplayRequest,
    ShipRequest,
    SubscriptionRequest,
    SubscriptionUpdate,
    from_json,
    from_query,
)
from chalicelib.service.errors import (
    ConflictError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
    ServiceError,
    UnauthenticatedError,
)
from chalicelib.settings import settings
from chalicelib.store.errors import StorageUnavailableError
from chalicelib.store.queues import DELIVERIES, OUTBOX

app = Chalice(app_name="shophook")
policies.load_all()
JSON = {"Content-Type": "application/json"}


class UnsupportedMediaTypeError(InvalidInputError):
    pass


# The most specific kind of a refusal decides its status.
STATUS: dict[type[ServiceError], int] = {
    UnsupportedMediaTypeError: 415,
    InvalidInputError: 400,
    UnauthenticatedError: 401,
    NotFoundError: 404,
    ConflictError: 409,
    NotAllowedError: 422,
}
STORAGE_UNAVAILABLE = 503


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=status, headers=JSON)


def _status_of(kind: type[ServiceError]) -> int:
    return next(STATUS[base] for base in kind.__mro__ if base in STATUS)


def _status(error: ServiceError) -> int:
    return _status_of(type(error))


# The routes of the integrator API as served, by (path, method): /openapi.json
# describes them, and each reads the request models it declares.
OPERATIONS: dict[tuple[str, str], Operation] = {}


def _refusals(
    path: str, keyed: bool, body: Any, query: Any, kinds: tuple[type[ServiceError], ...]
) -> tuple[int, ...]:
    """The statuses a route may refuse with: those of the kinds it names, and
    what every key, body, query or path parameter can bring."""
    statuses = {_status_of(kind) for kind in kinds}
    if keyed:
        statuses |= {STATUS[UnauthenticatedError], STORAGE_UNAVAILABLE}
    if body is not None:
        statuses |= {STATUS[InvalidInputError], STATUS[UnsupportedMediaTypeError]}
    if query is not None:
        statuses.add(STATUS[InvalidInputError])
    if "{" in path:
        statuses.add(STATUS[NotFoundError])
    return tuple(sorted(statuses))


def route(
    path: str,
    method: str,
    answer: type[BaseModel] | None,
    *,
    status: int = 200,
    body: type[Command] | None = None,
    query: type[Query] | None = None,
    keyed: bool = True,
    refusals: tuple[type[ServiceError], ...] = (),
    documented: bool = True,
) -> Callable[[Callable[..., Any]], Any]:
    """A route whose answer is shaped by its `answer` model (and sent with
    `status`), whose refusals are answered as their specific 4xx, and storage
    trouble as a 503 the caller may retry. (Chalice turns exceptions into 500s
    before any middleware sees them.) Every route takes any content type: the
    ones that read a body check it, so a wrong one gets ShopHook's error shape."""

    def register(view: Callable[..., Any]) -> Any:
        operation = Operation(
            name=view.__name__,
            path=path,
            method=method,
            summary=(view.__doc__ or view.__name__).splitlines()[0],
            status=status,
            answer=answer,
            body=body,
            query=query,
            keyed=keyed,
            refusals=_refusals(path, keyed, body, query, refusals),
        )
        if documented:
            OPERATIONS[(path, method)] = operation

        @functools.wraps(view)
        def answering(*args: Any, **kwargs: Any) -> Any:
            try:
                return _answer(operation, view(*args, **kwargs))
            except ServiceError as refused:
                return _json(_status(refused), refused.body())
            except StorageUnavailableError:
                logger.exception("storage unavailable")
                return _json(
                    STORAGE_UNAVAILABLE,
                    {"code": "storage_unavailable", "message": "try again shortly"},
                )

        return app.route(path, methods=[method], content_types=["*/*"])(answering)

    return register


def _answer(operation: Operation, answered: Any) -> Any:
    """The view's answer, through its model: exactly the fields the model names."""
    if isinstance(answered, Response):
        return answered
    if operation.answer is None:
        return Response(body="", status_code=operation.status)
    shaped = operation.answer.model_validate(answered).model_dump(mode="json", exclude_unset=True)
    return _json(operation.status, shaped)


def _operation() -> Operation:
    request = app.current_request
    return OPERATIONS[(request.context["resourcePath"], request.method)]


@app.middleware("all")
def fresh_log_context(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Each invocation starts its log lines without the previous one's keys."""
    logger.clear_state()
    return get_response(event)


def _body() -> Any:
    """The request's body as the route's declared command."""
    sent_as = app.current_request.headers.get("content-type", "application/json")
    if sent_as.partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            "unsupported_media_type", "send the body as application/json", "Content-Type"
        )
    declared = _operation().body
    assert declared is not None, "the route declares no body"
    return from_json(declared, app.current_request.raw_body or b"")


def _query() -> Any:
    """The request's query parameters as the route's declared query."""
    declared = _operation().query
    assert declared is not None, "the route declares no query"
    return from_query(declared, dict(app.current_request.query_params or {}))


def _principal() -> keys.Principal:
    return keys.authenticate(app.current_request.headers.get("authorization"))


def _reader_of(shop_id: str) -> str:
    """Check the caller's key covers the shop; return the reader's language."""
    _principal().require_shop(shop_id)
    return preferred_language(app.current_request.headers.get("accept-language"))


@route("/health", "GET", HealthAnswer, keyed=False)
def health() -> dict[str, str]:
    """Whether the stack can serve."""
    return {"status": "ok"}


@route("/openapi.json", "GET", OpenApiAnswer, keyed=False)
def describe_api() -> dict[str, Any]:
    """This description: OpenAPI 3.1, built from the models the routes use."""
    return openapi.document(OPERATIONS.values())


# The platforms' side (platforms.md section 1): answered in each platform's own
# shape, so not part of the integrator API's description.
@route("/webhooks/{platform}", "POST", None, keyed=False, documented=False)
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


@route("/shops/{shop_id}/orders/{order_id}", "GET", OrderAnswer)
def get_order(shop_id: str, order_id: str) -> dict[str, Any]:
    """The canonical order."""
    return queries.order(shop_id, order_id, _reader_of(shop_id))


@route("/shops/{shop_id}/after-sales", "GET", CaseListAnswer, query=CaseListQuery)
def list_after_sales(shop_id: str) -> dict[str, Any]:
    """The shop's after-sale cases, a page at a time."""
    language = _reader_of(shop_id)
    return queries.cases(shop_id, _query(), language, datetime.now(UTC))


@route("/shops/{shop_id}/after-sales/{case_id}", "GET", CaseAnswer)
def get_after_sale(shop_id: str, case_id: str) -> dict[str, Any]:
    """The canonical after-sale case, decided as it is now."""
    return queries.case(shop_id, case_id, _reader_of(shop_id), datetime.now(UTC))


@route("/shops/{shop_id}/deadlines", "GET", DeadlineListAnswer, query=DeadlineQuery)
def list_deadlines(shop_id: str) -> dict[str, Any]:
    """The shop's pending deadlines, soonest first."""
    _reader_of(shop_id)
    return queries.deadlines(shop_id, _query())


@route("/shops/{shop_id}/policy", "GET", PolicyAnswer)
def get_policy(shop_id: str) -> dict[str, Any]:
    """Every rule that applies to the shop, and what it may adjust."""
    return policy.show(shop_id, _reader_of(shop_id))


@route(
    "/shops/{shop_id}/policy",
    "PUT",
    PolicyAnswer,
    body=PolicyRequest,
    refusals=(NotAllowedError,),
)
def put_policy(shop_id: str) -> dict[str, Any]:
    """Change the shop's own targets, within the bounds the law and platform set."""
    language = _reader_of(shop_id)
    return policy.update(shop_id, _body(), language)


@route(
    "/shops/{shop_id}/after-sales/{case_id}/actions",
    "POST",
    ActionQueuedAnswer,
    status=202,
    body=ActionRequest,
    refusals=(ConflictError,),
)
def request_action(shop_id: str, case_id: str) -> dict[str, str]:
    """Queue an action on the case for the platform."""
    _reader_of(shop_id)
    return actions.request(shop_id, case_id, _body(), datetime.now(UTC))


@route("/shops/{shop_id}/after-sales/{case_id}/actions/{action_id}", "GET", ActionAnswer)
def get_action(shop_id: str, case_id: str, action_id: str) -> dict[str, Any]:
    """Where an action stands."""
    _reader_of(shop_id)
    return actions.show(shop_id, case_id, action_id)


@route(
    "/shops/{shop_id}/orders/{order_id}/ship",
    "POST",
    ActionQueuedAnswer,
    status=202,
    body=ShipRequest,
    refusals=(ConflictError,),
)
def ship_order(shop_id: str, order_id: str) -> dict[str, str]:
    """Queue the platform's ship call for a paid order."""
    _reader_of(shop_id)
    return actions.ship(shop_id, order_id, _body(), datetime.now(UTC))


@route(
    "/subscriptions",
    "POST",
    SubscriptionCreatedAnswer,
    status=201,
    body=SubscriptionRequest,
    refusals=(NotFoundError, ConflictError, NotAllowedError),
)
def create_subscription() -> dict[str, Any]:
    """Subscribe an endpoint to events of the key's shops; the secret is shown once."""
    principal = _principal()
    return subscriptions.create(principal, _body(), datetime.now(UTC))


@route("/subscriptions", "GET", SubscriptionListAnswer)
def list_subscriptions() -> dict[str, Any]:
    """The key's subscriptions."""
    return subscriptions.listing(_principal())


@route("/subscriptions/{subscription_id}", "GET", SubscriptionAnswer)
def get_subscription(subscription_id: str) -> dict[str, Any]:
    """One subscription and its delivery health (never its secret)."""
    return subscriptions.show(_principal(), subscription_id)


@route(
    "/subscriptions/{subscription_id}",
    "PATCH",
    SubscriptionAnswer,
    body=SubscriptionUpdate,
    refusals=(NotAllowedError, ConflictError),
)
def update_subscription(subscription_id: str) -> dict[str, Any]:
    """Change its URL (checked as a new one is), event types, or whether it is enabled."""
    principal = _principal()
    return subscriptions.update(principal, subscription_id, _body(), datetime.now(UTC))


@route(
    "/subscriptions/{subscription_id}/rotate-secret",
    "POST",
    SecretAnswer,
    refusals=(ConflictError,),
)
def rotate_secret(subscription_id: str) -> dict[str, str]:
    """A new signing secret, shown once; the old one signs too for 24 hours."""
    return subscriptions.rotate_secret(_principal(), subscription_id, datetime.now(UTC))


@route("/subscriptions/{subscription_id}", "DELETE", None, status=204)
def delete_subscription(subscription_id: str) -> None:
    """Delete it; what is still queued for it is cancelled."""
    subscriptions.delete(_principal(), subscription_id)


@route(
    "/subscriptions/{subscription_id}/deliveries",
    "GET",
    DeliveryListAnswer,
    query=DeliveryListQuery,
)
def list_deliveries(subscription_id: str) -> dict[str, Any]:
    """Its delivery log, newest first, with every attempt."""
    principal = _principal()
    return subscriptions.deliveries(principal, subscription_id, _query())


@route(
    "/subscriptions/{subscription_id}/replay",
    "POST",
    ReplayedAnswer,
    status=202,
    body=ReplayRequest,
)
def replay_deliveries(subscription_id: str) -> dict[str, Any]:
    """Send deliveries again, delivered or not: one by id, or a time range."""
    principal = _principal()
    return subscriptions.replay(principal, subscription_id, _body(), datetime.now(UTC))


@route("/shops/{shop_id}/disconnect", "POST", DisconnectedAnswer)
def disconnect_shop(shop_id: str) -> dict[str, str]:
    """Forget the shop's tokens; its webhooks are acknowledged and ignored from now on."""
    _reader_of(shop_id)
    shop = shops.disconnect(shop_id)
    return {"shop_id": shop.shop_id, "status": shop.status}


CONNECT_STATUS = {
    "unknown_marketplace": 404,
    "link_expired": 400,
    "declined": 400,
    "marketplace_failed": 502,
}


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
    secure = "; Secure" if (settings().public_url or "").startswith("https://") else ""
    return f"{oauth.COOKIE}={value}; Max-Age={max_age}; Path=/oauth; HttpOnly; SameSite=Lax{secure}"


def _connect_failed(error: Exception, cookie: str) -> Response:
    if isinstance(error, oauth.ConnectError):
        return _page(
            CONNECT_STATUS[error.code], pages.page(error.title, error.message, ok=False), cookie
        )
    return _page(503, pages.page("Please try again", "ShopHook is busy.", ok=False), cookie)


@app.route("/oauth/{platform}/connect", methods=["GET"], content_types=["*/*"])
def connect_shop(platform: str) -> Response:
    try:
        started = oauth.start(platform, datetime.now(UTC))
    except (oauth.ConnectError, StorageUnavailableError) as error:
        return _connect_failed(error, _cookie("", 0))
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


@app.route("/oauth/{platform}/callback", methods=["GET"], content_types=["*/*"])
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
    except (oauth.ConnectError, StorageUnavailableError) as error:
        return _connect_failed(error, spent)
    html = pages.page(
        "Shop connected",
        "ShopHook now receives this shop's orders and after-sales requests.",
        ok=True,
        details={
            "Shop": shop.name or shop.shop_id,
            "ShopHook id": shop.shop_id,
            "Webhooks": f"{settings().public_url}/webhooks/{platform}",
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
