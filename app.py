"""ShopHook's HTTP API on Chalice. Thin: read the request into a typed command,
call a use case, shape the answer. HTTP statuses live here and nowhere else."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from chalice import Chalice, Rate, Response
from chalice.app import SQSEvent

from chalicelib import openapi, policies
from chalicelib.domain.ids import MAX_ID_LENGTH
from chalicelib.domain.model import LANGUAGES
from chalicelib.domain.views import preferred_language
from chalicelib.first_use import OnFirstUse
from chalicelib.observability import logger
from chalicelib.openapi import Operation
from chalicelib.platforms import registry
from chalicelib.platforms.base import InboundRequest
from chalicelib.service import ingest, outbox
from chalicelib.service.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
    ServiceError,
    TooLargeError,
    UnauthenticatedError,
)
from chalicelib.settings import settings
from chalicelib.store.errors import StorageUnavailableError
from chalicelib.store.queues import DELIVERIES, OUTBOX
from chalicelib.web.render import STATIC, render

# The webhook's use case (and the outbox it writes to) is imported with the
# app; every other route's, page's, schedule's and queue consumer's service
# when first used, so that a cold start does not load the console, OAuth and
# the schedules for a webhook.
actions = OnFirstUse("chalicelib.service.actions")
changes = OnFirstUse("chalicelib.service.changes")
channel = OnFirstUse("chalicelib.service.channel")
console = OnFirstUse("chalicelib.service.console")
deliver = OnFirstUse("chalicelib.service.deliver")
keys = OnFirstUse("chalicelib.service.keys")
oauth = OnFirstUse("chalicelib.service.oauth")
pages = OnFirstUse("chalicelib.service.pages")
policy = OnFirstUse("chalicelib.service.policy")
queries = OnFirstUse("chalicelib.service.queries")
reconcile = OnFirstUse("chalicelib.service.reconcile")
shops = OnFirstUse("chalicelib.service.shops")
subscriptions = OnFirstUse("chalicelib.service.subscriptions")
sweep = OnFirstUse("chalicelib.service.sweep")
tokens = OnFirstUse("chalicelib.service.tokens")

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
    TooLargeError: 413,
    NotAllowedError: 422,
}
# A path's id names something stored only if it fits a key: a platform's id,
# with a platform or kind prefix. A longer one names nothing (and is never read).
MAX_PATH_ID = 2 * MAX_ID_LENGTH
STORAGE_UNAVAILABLE = 503


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=status, headers=JSON)


def _status_of(kind: type[ServiceError], statuses: dict[type[ServiceError], int] = STATUS) -> int:
    return next(statuses[base] for base in kind.__mro__ if base in statuses)


def _status(error: ServiceError, statuses: dict[type[ServiceError], int] = STATUS) -> int:
    return _status_of(type(error), statuses)


def _path_ids_bounded(params: dict[str, str]) -> None:
    """An id longer than any ShopHook holds names nothing (and would be over
    DynamoDB's key size, a 5xx): not found."""
    for name, value in params.items():
        if len(value) > MAX_PATH_ID:
            raise NotFoundError("not_found", f"no {name} is that long", name)


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
        statuses |= {
            STATUS[InvalidInputError],
            STATUS[UnsupportedMediaTypeError],
            STATUS[TooLargeError],
        }
    if query is not None:
        statuses.add(STATUS[InvalidInputError])
    if "{" in path:
        statuses.add(STATUS[NotFoundError])
    return tuple(sorted(statuses))


def route(
    path: str,
    method: str,
    answer: str | None,
    *,
    status: int = 200,
    body: str | None = None,
    query: str | None = None,
    keyed: bool = True,
    refusals: tuple[type[ServiceError], ...] = (),
    documented: bool = True,
) -> Callable[[Callable[..., Any]], Any]:
    """A route whose answer is shaped by its `answer` model (named: see
    openapi.Operation; sent with
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
        def answering(*args: Any, **kwargs: str) -> Any:
            try:
                _path_ids_bounded(kwargs)
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
    shaped = operation.answer_model.model_validate(answered).model_dump(
        mode="json", exclude_unset=True
    )
    return _json(operation.status, shaped)


def _operation() -> Operation:
    request = app.current_request
    return OPERATIONS[(request.context["resourcePath"], request.method)]


@app.middleware("all")
def fresh_log_context(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Each invocation starts its log lines without the previous one's keys."""
    logger.clear_state()
    return get_response(event)


# Every answer, pages above all (connect now, the console later): never framed
# (clickjacking), never sniffed into another type, and no Referer leaving with
# a callback's code in it.
BROWSER_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@app.middleware("http")
def browser_protections(event: Any, get_response: Callable[[Any], Response]) -> Response:
    response = get_response(event)
    response.headers = {**BROWSER_HEADERS, **response.headers}
    policy = response.headers.get("Content-Security-Policy", "default-src 'none'")
    if response.headers.get("Content-Type", "").startswith("text/html") and (
        "frame-ancestors" not in policy
    ):
        response.headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
    return response


def _body() -> Any:
    """The request's body as the route's declared command."""
    sent_as = app.current_request.headers.get("content-type", "application/json")
    if sent_as.partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            "unsupported_media_type", "send the body as application/json", "Content-Type"
        )
    from chalicelib.service.commands import from_json

    declared = _operation().body_model
    assert declared is not None, "the route declares no body"
    return from_json(declared, app.current_request.raw_body or b"")


def _query() -> Any:
    """The request's query parameters as the route's declared query."""
    from chalicelib.service.commands import from_query

    declared = _operation().query_model
    assert declared is not None, "the route declares no query"
    return from_query(declared, dict(app.current_request.query_params or {}))


def _principal() -> keys.Principal:
    return keys.authenticate(app.current_request.headers.get("authorization"))


def _reader_of(shop_id: str) -> str:
    """Check the caller's key covers the shop; return the reader's language."""
    _principal().require_shop(shop_id)
    return preferred_language(app.current_request.headers.get("accept-language"))


@route("/health", "GET", "HealthAnswer", keyed=False)
def health() -> dict[str, str]:
    """Whether the stack can serve."""
    return {"status": "ok"}


@route("/openapi.json", "GET", "OpenApiAnswer", keyed=False)
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


@route("/shops/{shop_id}", "GET", "ShopAnswer")
def get_shop(shop_id: str) -> dict[str, Any]:
    """A shop: its status, its reconciliation cursor and backfill progress."""
    _reader_of(shop_id)
    return shops.view(shops.get(shop_id))


@route("/shops/{shop_id}/orders/{order_id}", "GET", "OrderAnswer")
def get_order(shop_id: str, order_id: str) -> dict[str, Any]:
    """The canonical order."""
    return queries.order(shop_id, order_id, _reader_of(shop_id))


@route("/shops/{shop_id}/after-sales", "GET", "CaseListAnswer", query="CaseListQuery")
def list_after_sales(shop_id: str) -> dict[str, Any]:
    """The shop's after-sale cases, a page at a time."""
    language = _reader_of(shop_id)
    return queries.cases(shop_id, _query(), language, datetime.now(UTC))


@route("/shops/{shop_id}/after-sales/{case_id}", "GET", "CaseAnswer")
def get_after_sale(shop_id: str, case_id: str) -> dict[str, Any]:
    """The canonical after-sale case, decided as it is now."""
    return queries.case(shop_id, case_id, _reader_of(shop_id), datetime.now(UTC))


@route("/shops/{shop_id}/deadlines", "GET", "DeadlineListAnswer", query="DeadlineQuery")
def list_deadlines(shop_id: str) -> dict[str, Any]:
    """The shop's pending deadlines, soonest first."""
    _reader_of(shop_id)
    return queries.deadlines(shop_id, _query())


@route("/shops/{shop_id}/policy", "GET", "PolicyAnswer")
def get_policy(shop_id: str) -> dict[str, Any]:
    """Every rule that applies to the shop, and what it may adjust."""
    return policy.show(shop_id, _reader_of(shop_id))


@route(
    "/shops/{shop_id}/policy",
    "PUT",
    "PolicyAnswer",
    body="PolicyRequest",
    refusals=(NotAllowedError,),
)
def put_policy(shop_id: str) -> dict[str, Any]:
    """Change the shop's own targets, within the bounds the law and platform set."""
    language = _reader_of(shop_id)
    return policy.update(shop_id, _body(), language)


@route(
    "/shops/{shop_id}/after-sales/{case_id}/actions",
    "POST",
    "ActionQueuedAnswer",
    status=202,
    body="ActionRequest",
    refusals=(ConflictError,),
)
def request_action(shop_id: str, case_id: str) -> dict[str, str]:
    """Queue an action on the case for the platform."""
    _reader_of(shop_id)
    return actions.request(shop_id, case_id, _body(), datetime.now(UTC))


@route("/shops/{shop_id}/after-sales/{case_id}/actions/{action_id}", "GET", "ActionAnswer")
def get_action(shop_id: str, case_id: str, action_id: str) -> dict[str, Any]:
    """Where an action stands."""
    _reader_of(shop_id)
    return actions.show(shop_id, case_id, action_id)


@route(
    "/shops/{shop_id}/orders/{order_id}/ship",
    "POST",
    "ActionQueuedAnswer",
    status=202,
    body="ShipRequest",
    refusals=(ConflictError,),
)
def ship_order(shop_id: str, order_id: str) -> dict[str, str]:
    """Queue the platform's ship call for a paid order."""
    _reader_of(shop_id)
    return actions.ship(shop_id, order_id, _body(), datetime.now(UTC))


@route(
    "/subscriptions",
    "POST",
    "SubscriptionCreatedAnswer",
    status=201,
    body="SubscriptionRequest",
    refusals=(NotFoundError, ConflictError, NotAllowedError),
)
def create_subscription() -> dict[str, Any]:
    """Subscribe an endpoint to events of the key's shops; the secret is shown once."""
    principal = _principal()
    return subscriptions.create(principal, _body(), datetime.now(UTC))


@route("/subscriptions", "GET", "SubscriptionListAnswer")
def list_subscriptions() -> dict[str, Any]:
    """The key's subscriptions."""
    return subscriptions.listing(_principal())


@route("/subscriptions/{subscription_id}", "GET", "SubscriptionAnswer")
def get_subscription(subscription_id: str) -> dict[str, Any]:
    """One subscription and its delivery health (never its secret)."""
    return subscriptions.show(_principal(), subscription_id)


@route(
    "/subscriptions/{subscription_id}",
    "PATCH",
    "SubscriptionAnswer",
    body="SubscriptionUpdate",
    refusals=(NotAllowedError, ConflictError),
)
def update_subscription(subscription_id: str) -> dict[str, Any]:
    """Change its URL (checked as a new one is), event types, or whether it is enabled."""
    principal = _principal()
    return subscriptions.update(principal, subscription_id, _body(), datetime.now(UTC))


@route(
    "/subscriptions/{subscription_id}/rotate-secret",
    "POST",
    "SecretAnswer",
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
    "DeliveryListAnswer",
    query="DeliveryListQuery",
)
def list_deliveries(subscription_id: str) -> dict[str, Any]:
    """Its delivery log, newest first, with every attempt."""
    principal = _principal()
    return subscriptions.deliveries(principal, subscription_id, _query())


@route(
    "/subscriptions/{subscription_id}/replay",
    "POST",
    "ReplayedAnswer",
    status=202,
    body="ReplayRequest",
)
def replay_deliveries(subscription_id: str) -> dict[str, Any]:
    """Send deliveries again, delivered or not: one by id, or a time range."""
    principal = _principal()
    return subscriptions.replay(principal, subscription_id, _body(), datetime.now(UTC))


@route("/shops/{shop_id}/disconnect", "POST", "DisconnectedAnswer")
def disconnect_shop(shop_id: str) -> dict[str, str]:
    """Forget the shop's tokens; its webhooks are acknowledged and ignored from now on."""
    _reader_of(shop_id)
    shop = shops.disconnect(shop_id, datetime.now(UTC))
    return {"shop_id": shop.shop_id, "status": shop.status}


CONNECT_STATUS = {
    "unknown_marketplace": 404,
    "too_many_connects": 429,
    "link_expired": 400,
    "declined": 400,
    "marketplace_failed": 502,
}


# Every HTML page takes only this origin's own styles and scripts (no inline
# script, no inline handlers); browser_protections adds the rest.
HTML_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


def _html(status: int, html: str, cookies: list[str] | None = None) -> Response:
    headers: dict[str, Any] = dict(HTML_HEADERS)
    if cookies:
        headers["Set-Cookie"] = cookies
    return Response(body=html, status_code=status, headers=headers)


def _page(status: int, html: str, cookie: str) -> Response:
    return _html(status, html, [cookie])


def _cookie_path(path: str) -> str:
    """Where a cookie is sent: `path` under the public URL's own path (a deployed
    API answers under its stage, /api)."""
    base = urlsplit(settings().public_url or "").path.rstrip("/")
    return f"{base}{path}"


def _set_cookie(name: str, value: str, path: str, max_age: int) -> str:
    secure = "; Secure" if (settings().public_url or "").startswith("https://") else ""
    return (
        f"{name}={value}; Max-Age={max_age}; Path={_cookie_path(path)}; "
        f"HttpOnly; SameSite=Lax{secure}"
    )


def _cookie(value: str, max_age: int) -> str:
    return _set_cookie(oauth.COOKIE, value, "/oauth", max_age)


def _cookie_value(name: str) -> str | None:
    # Imported with the first page's cookie (its regular expressions are
    # compiled on import), not at every cold start.
    from http.cookies import CookieError, SimpleCookie

    jar = SimpleCookie()
    try:
        jar.load(app.current_request.headers.get("cookie", ""))
    except CookieError:
        return None
    return jar[name].value if name in jar else None


def _connect_failed(error: Exception, cookie: str) -> Response:
    if isinstance(error, oauth.ConnectError):
        status = CONNECT_STATUS[error.code]
        page = _page(status, pages.page(error.title, error.message, ok=False), cookie)
        if status == 429:
            page.headers["Retry-After"] = "60"
        return page
    return _page(503, pages.page("Please try again", "ShopHook is busy.", ok=False), cookie)


def _start_connect(platform: str, purpose: str) -> Response:
    """To the platform's approval page, with the connect cookie bound to the state."""
    identity = app.current_request.context.get("identity") or {}
    client = identity.get("sourceIp") or "unknown"
    try:
        started = oauth.start(platform, datetime.now(UTC), client, purpose)
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


@app.route("/oauth/{platform}/connect", methods=["GET"], content_types=["*/*"])
def connect_shop(platform: str) -> Response:
    return _start_connect(platform, "connect")


@app.route("/oauth/{platform}/callback", methods=["GET"], content_types=["*/*"])
def finish_connect(platform: str) -> Response:
    request = app.current_request
    query = {name: request.query_params.get(name, "") for name in (request.query_params or {})}
    spent = _cookie("", 0)
    now = datetime.now(UTC)
    try:
        finished = oauth.finish(platform, query, _cookie_value(oauth.COOKIE), now)
        if finished.purpose == "console":
            session = console.start(finished.shop.shop_id, now)
            return _see_other(
                "/console",
                [spent, _console_cookie(session, int(console.SESSION_IDLE.total_seconds()))],
            )
    except (oauth.ConnectError, StorageUnavailableError) as error:
        return _connect_failed(error, spent)
    shop = finished.shop
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


# The seller console (docs: ../shared/docs/console.md). Every page resolves the
# session first; without one it is the sign-in page. Every POST carries the
# session's CSRF token. The shop comes from the session only.
CONSOLE_COOKIE = "shophook_console"
MAX_FORM_BYTES = 16 * 1024
CONSOLE_STATUS = {**STATUS, ForbiddenError: 403}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _console_cookie(cookie: str, max_age: int) -> str:
    return _set_cookie(CONSOLE_COOKIE, cookie, "/console", max_age)


def _see_other(path: str, cookies: list[str] | None = None) -> Response:
    headers: dict[str, Any] = {"Location": _cookie_path(path), "Cache-Control": "no-store"}
    if cookies:
        headers["Set-Cookie"] = cookies
    return Response(body="", status_code=303, headers=headers)


def _form() -> dict[str, str]:
    request = app.current_request
    sent_as = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    raw = request.raw_body or b""
    if sent_as != "application/x-www-form-urlencoded" or len(raw) > MAX_FORM_BYTES:
        raise UnsupportedMediaTypeError("unsupported_form", "send the form as the page does")
    try:
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInputError("invalid_form", "the form could not be read") from None


@dataclass(frozen=True)
class Visit:
    """One console request: who (the session), in which language, when, and the form."""

    session: console.Session
    language: str
    now: datetime
    form: dict[str, str]

    def page(self, status: int, template: str, /, **context: Any) -> Response:
        return _html(
            status,
            render(
                template,
                self.language,
                csrf=self.session.csrf_token,
                now=self.now,
                path=app.current_request.path,
                base=_cookie_path(""),
                **context,
            ),
        )


def _signed_out(language: str, status: int) -> Response:
    html = render(
        "sign_in.html", language, platforms=sorted(registry()), base=_cookie_path(""), now=None
    )
    return _html(status, html, [_console_cookie("", 0)])


def console_page(path: str, method: str = "GET") -> Callable[[Callable[..., Any]], Any]:
    def register(view: Callable[..., Response]) -> Any:
        @functools.wraps(view)
        def answering(**params: str) -> Response:
            request = app.current_request
            now = datetime.now(UTC)
            asked = (request.query_params or {}).get("lang", "")
            language = (
                asked
                if asked in LANGUAGES
                else preferred_language(request.headers.get("accept-language"))
            )
            try:
                _path_ids_bounded(params)
                session = console.resume(_cookie_value(CONSOLE_COOKIE), now)
                if session is None:
                    return _signed_out(language, 200 if path == "/console" else 401)
                language = console.language_of(session, language)
                form = _form() if method == "POST" else {}
                if method == "POST":
                    console.check_csrf(session, form.get("csrf"))
                return view(Visit(session, language, now, form), **params)
            except ServiceError as refused:
                html = render(
                    "error.html", language, error=refused, base=_cookie_path(""), now=None
                )
                return _html(_status(refused, CONSOLE_STATUS), html)
            except StorageUnavailableError:
                logger.exception("storage unavailable")
                html = render("error.html", language, error=None, base=_cookie_path(""), now=None)
                return _html(503, html)

        return app.route(path, methods=[method], content_types=["*/*"])(answering)

    return register


@app.route("/console/static/{name}", methods=["GET"], content_types=["*/*"])
def console_static(name: str) -> Response:
    served = {file.name: file for file in STATIC.iterdir()}
    if name not in served:
        return _html(404, render("error.html", "en", error=None, base="", now=None))
    file = served[name]
    return Response(
        body=file.read_text(encoding="utf-8"),
        status_code=200,
        headers={
            "Content-Type": STATIC_TYPES[file.suffix],
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        },
    )


@app.route("/console/sign-in/{platform}", methods=["GET"], content_types=["*/*"])
def console_sign_in(platform: str) -> Response:
    """The platform's OAuth, for the console: the callback connects (or
    reconnects) the shop and starts a session for it."""
    return _start_connect(platform, "console")


@console_page("/console/sign-out", "POST")
def console_sign_out(visit: Visit) -> Response:
    console.end(visit.session)
    return _see_other("/console", [_console_cookie("", 0)])


@console_page("/console/language", "POST")
def console_language(visit: Visit) -> Response:
    console.set_language(visit.session, visit.form.get("language", ""))
    back = visit.form.get("back", "/console")
    return _see_other(back if back.startswith("/console") else "/console")


@console_page("/console")
def console_dashboard(visit: Visit) -> Response:
    return visit.page(
        200, "dashboard.html", **console.dashboard(visit.session, visit.language, visit.now)
    )


@console_page("/console/after-sales")
def console_after_sales(visit: Visit) -> Response:
    params = app.current_request.query_params or {}
    shown = console.after_sales(
        visit.session,
        params.get("status", "open"),
        params.get("due_within", ""),
        params.get("cursor"),
        visit.language,
        visit.now,
    )
    return visit.page(200, "after_sales.html", **shown)


def _case(
    visit: Visit, case_id: str, status: int = 200, error: ServiceError | None = None
) -> Response:
    shown = console.case_page(visit.session, case_id, visit.language, visit.now)
    return visit.page(status, "case.html", error=error, **shown)


@console_page("/console/after-sales/{case_id}")
def console_case(visit: Visit, case_id: str) -> Response:
    return _case(visit, case_id)


def _acted(
    act: Callable[[], object], shown_again: Callable[[int, ServiceError], Response], then: str
) -> Response:
    """A form's action, then the page it came from; refused, the page again with why."""
    try:
        act()
    except (InvalidInputError, ConflictError) as refused:
        return shown_again(_status(refused, CONSOLE_STATUS), refused)
    return _see_other(then)


@console_page("/console/after-sales/{case_id}/actions", "POST")
def console_act(visit: Visit, case_id: str) -> Response:
    return _acted(
        lambda: console.act(visit.session, case_id, visit.form, visit.now),
        lambda status, refused: _case(visit, case_id, status, refused),
        f"/console/after-sales/{quote(case_id)}",
    )


@console_page("/console/actions/{action_id}")
def console_action_state(visit: Visit, action_id: str) -> Response:
    return _json(200, console.action_state(visit.session, action_id))


@console_page("/console/orders")
def console_orders(visit: Visit) -> Response:
    cursor = (app.current_request.query_params or {}).get("cursor")
    shown = console.orders(visit.session, cursor, visit.language, visit.now)
    return visit.page(200, "orders.html", **shown)


def _order(
    visit: Visit, order_id: str, status: int = 200, error: ServiceError | None = None
) -> Response:
    shown = console.order_page(visit.session, order_id, visit.language, visit.now)
    return visit.page(status, "order.html", error=error, form=visit.form, **shown)


@console_page("/console/orders/{order_id}")
def console_order(visit: Visit, order_id: str) -> Response:
    return _order(visit, order_id)


@console_page("/console/orders/{order_id}/ship", "POST")
def console_ship(visit: Visit, order_id: str) -> Response:
    return _acted(
        lambda: console.ship(visit.session, order_id, visit.form, visit.now),
        lambda status, refused: _order(visit, order_id, status, refused),
        f"/console/orders/{quote(order_id)}",
    )


def _settings(
    visit: Visit, status: int = 200, error: ServiceError | None = None, saved: bool = False
) -> Response:
    # A refused form is shown again as it was sent, with the field at fault named.
    form = visit.form if error else {}
    shown = console.settings_page(visit.session, visit.language)
    return visit.page(status, "settings.html", error=error, saved=saved, form=form, **shown)


@console_page("/console/settings")
def console_settings(visit: Visit) -> Response:
    return _settings(visit)


@console_page("/console/settings", "POST")
def console_save_settings(visit: Visit) -> Response:
    try:
        console.save_settings(visit.session, visit.form)
    except InvalidInputError as refused:
        return _settings(visit, 400, refused)
    return _settings(visit, saved=True)


def _integrations(visit: Visit, status: int = 200, **extra: Any) -> Response:
    shown = console.integrations(visit.session, visit.now)
    return visit.page(
        status,
        "integrations.html",
        **{"error": None, "new_key": None, "replayed": None, **extra, **shown},
    )


@console_page("/console/integrations")
def console_integrations(visit: Visit) -> Response:
    return _integrations(visit)


@console_page("/console/integrations/keys", "POST")
def console_create_key(visit: Visit) -> Response:
    try:
        created = console.create_key(visit.session, visit.form, visit.now)
    except InvalidInputError as refused:
        return _integrations(visit, 400, error=refused)
    # Shown this once, on this answer: only its hash is kept.
    return _integrations(visit, 201, new_key=created)


@console_page("/console/integrations/keys/{key_id}/revoke", "POST")
def console_revoke_key(visit: Visit, key_id: str) -> Response:
    console.revoke_key(visit.session, key_id, visit.now)
    return _see_other("/console/integrations")


@console_page("/console/integrations/subscriptions/{subscription_id}/replay", "POST")
def console_replay(visit: Visit, subscription_id: str) -> Response:
    try:
        replayed = console.replay(visit.session, subscription_id, visit.form, visit.now)
    except InvalidInputError as refused:
        return _integrations(visit, 400, error=refused)
    return _integrations(visit, 200, replayed=replayed)


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


@app.schedule(Rate(15, unit=Rate.MINUTES))
def reconcile_shops(event: Any) -> dict[str, int]:
    """Queue one reconciliation pull per shop with live tokens (run by deliver_outbox)."""
    return {"queued": reconcile.schedule(datetime.now(UTC))}


@app.schedule(Rate(1, unit=Rate.MINUTES))
def drain_channels(event: Any) -> dict[str, dict[str, int]]:
    """Drain the platforms' message channels that are on (SHOPHOOK_TAOBAO_TMC=1)."""
    return {
        report.platform: {
            "consumed": report.consumed,
            "confirmed": report.confirmed,
            "redelivered": report.redelivered,
            "unstored": report.unstored,
        }
        for report in channel.drain(datetime.now(UTC))
    }


@app.schedule(Rate(2, unit=Rate.MINUTES))
def requeue_outbox(event: Any) -> dict[str, int]:
    """Send again outbox rows whose enqueue failed after their commit."""
    return {"requeued": outbox.requeue(datetime.now(UTC))}


# One message per invocation: a slow platform or subscriber delays nothing else.
@app.on_sqs_message(queue=OUTBOX.queue_name(), batch_size=1)
def deliver_outbox(event: SQSEvent) -> dict[str, Any]:
    """Platform actions, events fanned out to their subscriptions, and shops'
    reconciliation pulls."""
    return deliver.consume(OUTBOX, event.to_dict(), datetime.now(UTC))


@app.on_sqs_message(queue=DELIVERIES.queue_name(), batch_size=1)
def deliver_webhooks(event: SQSEvent) -> dict[str, Any]:
    """One event to one integrator, signed per Standard Webhooks."""
    return deliver.consume(DELIVERIES, event.to_dict(), datetime.now(UTC))


@app.lambda_function(name="tell_changes")
def tell_changes(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The orders' and cases' committed writes, from their tables' streams (wired
    in infra/template.json): the events and actions each one tells."""
    return changes.consume(event, datetime.now(UTC))
