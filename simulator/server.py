"""The platform simulator as an HTTP service, playing every platform of
simulator/platforms/: under `/{name}`, its OAuth (an approve page and the token
endpoints of platforms.md section 3) and its API (section 2), which checks
ShopHook's signatures, sessions and business fields and answers in the
platform's shapes. The platform modules own the paths, shapes and codes; this
module holds what all platforms share, and names none of them.

Like the real platforms, a call that would repeat a step already taken (agree
a refund agreed, ship a trade shipped) is refused, in the platform's words
(Taobao-style sub_code `isv.status-not-allowed`, JD-style code `66`).

The platforms also hold records, as a platform holds its sellers' trades and
refunds whether or not it pushed them (`POST /_sim/records`: a scenario's
messages), and answer the reconciliation queries of section 2.3 from the
latest version of each, for the seller whose session calls.

Faults can be queued per platform (`POST /_sim/faults`): `rate_limit`,
`server_error`, `invalid_session`, `timeout` (the call is carried out, its
answer held back), `reset` (carried out, then the connection is reset) and
`none` (answered as usual: it places the faults after it on later calls).
Every API call received is kept for inspection (`GET /_sim/calls`, each with
its answer and whether it was carried out);
`POST /_sim/reset` forgets calls, faults, steps taken and records held.

A platform with a message channel (platforms.md 1.4) keeps one queue per app:
`POST /_sim/channel` publishes a scenario's messages to it (thin contents by
default, their records held for the detail calls), a consume hands out what is
visible and leases it for CHANNEL_LEASE (by the simulator's clock, so frozen
time freezes it too), a confirm takes ids off for good, and what was handed out
and never confirmed is handed out again once its lease ends
(`GET /_sim/channel`: waiting, leased, redelivered, permitted shops).

`shophook local` starts it and points the OAuth and API URLs at it.
"""

from __future__ import annotations

import secrets
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from chalicelib.platforms.base import AppCredentials
from chalicelib.settings import platform_variable
from simulator.platforms import registry
from simulator.platforms.base import (
    ApiCall,
    ApiMethod,
    ArgumentRefusedError,
    ChannelMethods,
    HeldRecord,
    Query,
    Refusal,
    SimulatedPlatform,
    TokenRequest,
)
from simulator.webhooks import Message

ACCESS_LIFETIME_SECONDS = 86400
REFRESH_LIFETIME_SECONDS = 30 * 86400
TIMEOUT_HOLD_SECONDS = 15  # longer than any client timeout ShopHook uses
FAULTS = ("rate_limit", "server_error", "timeout", "invalid_session", "reset", "none")
# A message handed out by a consume and not confirmed comes back after this.
CHANNEL_LEASE = timedelta(minutes=5)

_APPROVE_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<title>{platform} · authorize ShopHook</title>
<style>body{{font-family:system-ui,sans-serif;max-width:30rem;margin:10vh auto}}
label,input,button{{display:block;margin:.5rem 0}}button{{padding:.5rem 1rem}}</style>
</head><body><h1>Authorize ShopHook</h1>
<p>ShopHook asks to read your shop's orders and after-sales and to act on them.</p>
<form method="post" action="{action}">
<input type="hidden" name="redirect_uri" value="{redirect_uri}">
<input type="hidden" name="state" value="{state}">
<label>Seller id <input name="seller" value="{seller}"></label>
<label>Shop name <input name="nick" value="simulated {platform} shop"></label>
<button id="approve" name="decision" value="approve">Approve</button>
<button id="deny" name="decision" value="deny">Deny</button>
</form></body></html>"""


@dataclass
class Grants:
    """Codes and refresh tokens the simulated platforms have handed out."""

    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # access token -> seller
    nicks: dict[str, str] = field(default_factory=dict)  # seller -> the shop's nick
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_code(self, seller: str, nick: str) -> str:
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = (seller, nick)
        return code

    def tokens(self, seller: str, nick: str) -> dict[str, object]:
        refresh, access = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[refresh] = (seller, nick)
            self.sessions[access] = seller
            self.nicks[seller] = nick
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": ACCESS_LIFETIME_SECONDS,
            "re_expires_in": REFRESH_LIFETIME_SECONDS,
        }

    def redeem(self, grant_type: str, value: str) -> tuple[str, str] | None:
        with self.lock:
            if grant_type == "authorization_code":
                return self.codes.pop(value, None)
            if grant_type == "refresh_token":
                return self.refresh_tokens.pop(value, None)
        return None


@dataclass
class Calls:
    """API calls received, faults queued for the next ones, and the steps taken
    (platform, method, subject), per platform."""

    received: list[dict[str, object]] = field(default_factory=list)
    faults: dict[str, deque[str]] = field(default_factory=dict)
    taken: set[tuple[str, str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, step: tuple[str, str, str]) -> bool:
        """Take a step once; False if it was taken already."""
        with self.lock:
            if step in self.taken:
                return False
            self.taken.add(step)
            return True

    def forget(self) -> None:
        with self.lock:
            self.received.clear()
            self.faults.clear()
            self.taken.clear()

    def record(
        self,
        platform: str,
        method: str,
        params: dict[str, str],
        answer: str,
        carried_out: bool,
        query: bool,
        channel: bool,
    ) -> None:
        with self.lock:
            self.received.append(
                {
                    "platform": platform,
                    "method": method,
                    "params": params,
                    "answer": answer,
                    "carried_out": carried_out,
                    # A read (a reconciliation listing): it changes nothing on the platform.
                    "query": query,
                    # On the app's message channel: no step on any shop's trade.
                    "channel": channel,
                }
            )

    def next_fault(self, platform: str) -> str | None:
        with self.lock:
            queue = self.faults.get(platform)
            return queue.popleft() if queue else None


@dataclass
class Holdings:
    """What the simulated platforms hold for their listings: per platform, seller
    and listing, the latest version of each entity's record."""

    records: dict[tuple[str, str, str], dict[str, HeldRecord]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, platform: str, held: HeldRecord) -> None:
        with self.lock:
            kept = self.records.setdefault((platform, held.seller, held.listing), {})
            earlier = kept.get(held.entity_id)
            if earlier is None or earlier.modified <= held.modified:
                kept[held.entity_id] = held

    def of(self, platform: str, seller: str, listing: str) -> list[HeldRecord]:
        with self.lock:
            return list(self.records.get((platform, seller, listing), {}).values())

    def forget(self) -> None:
        with self.lock:
            self.records.clear()


@dataclass
class Queued:
    """A message on a channel: visible from `visible_at`, handed out `handed` times."""

    message_id: str
    body: dict[str, Any]
    visible_at: datetime
    handed: int = 0


@dataclass
class Channels:
    """Each platform's message channel for its app: the messages not confirmed, in
    the order published, and the shops permitted."""

    queued: dict[str, list[Queued]] = field(default_factory=dict)
    permitted: dict[str, set[str]] = field(default_factory=dict)
    redelivered: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, platform: str, message_id: str, body: dict[str, Any], now: datetime) -> None:
        with self.lock:
            self.queued.setdefault(platform, []).append(Queued(message_id, body, now))

    def consume(self, platform: str, quantity: int, now: datetime) -> list[dict[str, Any]]:
        """Up to `quantity` visible messages, each leased for CHANNEL_LEASE."""
        with self.lock:
            visible = [item for item in self.queued.get(platform, []) if item.visible_at <= now]
            taken = visible[:quantity]
            for item in taken:
                if item.handed:
                    self.redelivered[platform] = self.redelivered.get(platform, 0) + 1
                item.handed += 1
                item.visible_at = now + CHANNEL_LEASE
            return [item.body for item in taken]

    def confirm(self, platform: str, message_ids: Iterable[str]) -> None:
        done = set(message_ids)
        with self.lock:
            kept = self.queued.get(platform, [])
            self.queued[platform] = [item for item in kept if item.message_id not in done]

    def permit(self, platform: str, seller: str, allowed: bool) -> None:
        with self.lock:
            sellers = self.permitted.setdefault(platform, set())
            if allowed:
                sellers.add(seller)
            else:
                sellers.discard(seller)

    def forget(self) -> None:
        with self.lock:
            self.queued.clear()
            self.permitted.clear()
            self.redelivered.clear()

    def state(self, now: datetime) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {
                platform: {
                    "waiting": sum(item.visible_at <= now for item in queued),
                    "leased": sum(item.visible_at > now for item in queued),
                    "redelivered": self.redelivered.get(platform, 0),
                    "permitted": sorted(self.permitted.get(platform, set())),
                }
                for platform in self.queued.keys() | self.permitted.keys()
                for queued in [self.queued.get(platform, [])]
            }


def create_app(
    credentials: Mapping[str, AppCredentials], hold_seconds: float = TIMEOUT_HOLD_SECONDS
) -> Flask:
    app = Flask("shophook-simulator")
    grants = Grants()
    calls = Calls()
    holdings = Holdings()
    channels = Channels()

    def approve_page(platform: SimulatedPlatform) -> str:
        return _APPROVE_PAGE.format(
            platform=platform.name,
            action=f"/{platform.name}{platform.authorize_path}",
            redirect_uri=escape(request.args.get("redirect_uri", "")),
            state=escape(request.args.get("state", "")),
            seller=platform.approve_seller,
        )

    def decide() -> Response:
        target = request.form.get("redirect_uri", "")
        state = request.form.get("state", "")
        if request.form.get("decision") != "approve":
            return redirect(f"{target}?{urlencode({'error': 'access_denied', 'state': state})}")
        code = grants.issue_code(request.form.get("seller", ""), request.form.get("nick", ""))
        return redirect(f"{target}?{urlencode({'code': code, 'state': state})}")

    def token_answer(platform: SimulatedPlatform):
        """Every platform's token endpoints: the grant comes as a code or a refresh token."""
        asked = TokenRequest.read(request, platform.token_client_fields)
        expected = credentials[platform.name]
        if (asked.client_id, asked.client_secret) != (expected.app_key, expected.app_secret):
            return jsonify(error="invalid_client"), 401
        granted = grants.redeem(asked.grant_type, asked.grant)
        if granted is None:
            return jsonify(error="invalid_grant"), 400
        seller, nick = granted
        return jsonify(grants.tokens(seller, nick) | platform.identity(seller, nick))

    def token_call(platform: SimulatedPlatform, call: ApiCall) -> dict[str, Any]:
        """A token method (Doudian-style `token.create`): signed by the app, no session."""
        if not call.signature_ok:
            return platform.refusal(Refusal.BAD_SIGNATURE, "")
        grant_type = platform.token_methods[call.method]
        if call.business.get("grant_type") != grant_type:
            return platform.refusal(Refusal.INVALID_ARGUMENT, f"grant_type must be {grant_type}")
        grant_field = "code" if grant_type == "authorization_code" else "refresh_token"
        granted = grants.redeem(grant_type, str(call.business.get(grant_field, "")))
        if granted is None:
            return platform.refusal(Refusal.INVALID_ARGUMENT, grant_field)
        seller, nick = granted
        body = grants.tokens(seller, nick) | platform.identity(seller, nick)
        return platform.success(call.method, body)

    def refused_at_gateway(
        platform: SimulatedPlatform, call: ApiCall, fault: str | None
    ) -> Refusal | None:
        """What the gateway refuses before any method sees the call."""
        if fault == "rate_limit":
            return Refusal.RATE_LIMITED
        if not call.signature_ok:
            return Refusal.BAD_SIGNATURE
        app_level = platform.channel is not None and call.method in platform.channel.app_level
        if fault == "invalid_session" or (call.session not in grants.sessions and not app_level):
            return Refusal.INVALID_SESSION
        return None

    def carried_out(
        platform: SimulatedPlatform, call: ApiCall, method: ApiMethod
    ) -> tuple[Refusal, str] | None:
        """Why the platform refuses a step, None when it carries it out (taking the step)."""
        if missing := method.missing(call.business):
            return Refusal.MISSING_ARGUMENT, missing
        seller = grants.sessions.get(call.session, "")
        if method.invalid is not None and (invalid := method.invalid(call.business, seller)):
            return Refusal.INVALID_ARGUMENT, invalid
        if not calls.take((platform.name, call.method, method.subject(call.business))):
            return Refusal.ALREADY_DONE, ""
        return None

    def queried(
        platform: SimulatedPlatform, call: ApiCall, query: Query
    ) -> tuple[Refusal, str] | dict[str, Any]:
        """A query's body from what the platform holds for the calling seller, or why not."""
        if missing := query.missing(call.business):
            return Refusal.MISSING_ARGUMENT, missing
        seller = grants.sessions.get(call.session, "")
        try:
            return query.answer(call.business, holdings.of(platform.name, seller, query.listing))
        except (ArgumentRefusedError, TypeError, ValueError) as error:
            return Refusal.INVALID_ARGUMENT, str(error)

    def channel_call(
        platform: SimulatedPlatform, channel: ChannelMethods, call: ApiCall
    ) -> tuple[Refusal, str] | dict[str, Any]:
        """A call on the platform's message channel: its body, or why it is refused."""
        now = datetime.now(UTC)
        try:
            if call.method == channel.consume:
                quantity = channel.quantity(call.business)
                return channel.batch(channels.consume(platform.name, quantity, now))
            if call.method == channel.confirm:
                channels.confirm(platform.name, channel.confirmed(call.business))
            elif call.method == channel.permit:
                seller = grants.sessions[call.session]
                channels.permit(platform.name, grants.nicks.get(seller, seller), allowed=True)
            else:
                channels.permit(platform.name, str(call.business.get("nick", "")), allowed=False)
        except (ArgumentRefusedError, KeyError) as error:
            return Refusal.INVALID_ARGUMENT, str(error)
        return dict(channel.done)

    def answered(
        platform: SimulatedPlatform, call: ApiCall, fault: str | None
    ) -> tuple[dict[str, Any], bool]:
        """The answer to a call the gateway let through or refused, and whether it
        was carried out."""
        if call.method in platform.token_methods and fault is None:
            return token_call(platform, call), False
        gateway = refused_at_gateway(platform, call, fault)
        if gateway is not None:
            return platform.refusal(gateway, ""), False
        if platform.channel is not None and call.method in channel_methods(platform.channel):
            body = channel_call(platform, platform.channel, call)
            if isinstance(body, tuple):
                return platform.refusal(*body), False
            return platform.success(call.method, body), True
        query = platform.queries.get(call.method)
        if query is not None:
            body = queried(platform, call, query)
            if isinstance(body, tuple):
                return platform.refusal(*body), False
            return platform.success(call.method, body), True
        method = platform.methods[call.method]
        refusal = carried_out(platform, call, method)
        if refusal is not None:
            return platform.refusal(*refusal), False
        return platform.success(call.method, method.answer), True

    def api_answer(platform: SimulatedPlatform):
        call = platform.read_call(request, credentials[platform.name])
        known = {
            *platform.methods,
            *platform.queries,
            *platform.token_methods,
            *channel_methods(platform.channel),
        }
        if call.method not in known:
            return jsonify(platform.refusal(Refusal.UNKNOWN_METHOD, call.method))
        fault = calls.next_fault(platform.name)
        if fault == "server_error":
            response, done = app.make_response((jsonify(error="internal"), 500)), False
        else:
            answer, done = answered(platform, call, fault)
            response = jsonify(answer)
        calls.record(
            platform.name,
            call.method,
            call.params,
            response.get_data(as_text=True),
            done,
            query=call.method in platform.queries,
            channel=call.method in channel_methods(platform.channel),
        )
        if fault == "timeout":
            time.sleep(hold_seconds)
        if fault == "reset":
            drop_connection(request.environ)
        return response

    for platform in registry().values():
        prefix = f"/{platform.name}"
        app.add_url_rule(
            prefix + platform.authorize_path,
            f"{platform.name}_authorize",
            lambda platform=platform: approve_page(platform),
            methods=["GET"],
        )
        app.add_url_rule(
            prefix + platform.authorize_path, f"{platform.name}_decide", decide, methods=["POST"]
        )
        for http_method, path in platform.token_routes:
            app.add_url_rule(
                prefix + path,
                f"{platform.name}_token_{path}",
                lambda platform=platform: token_answer(platform),
                methods=[http_method],
            )
        # A platform that names the method in the path too (Doudian-style) is
        # called below its API path.
        for suffix in ("", "/<path:method_path>"):
            app.add_url_rule(
                prefix + platform.api_path + suffix,
                f"{platform.name}_api{suffix}",
                lambda platform=platform, **_: api_answer(platform),
                methods=["POST"],
            )

    @app.post("/_sim/faults")
    def queue_faults():
        """{"taobao": ["rate_limit", "timeout"], "jd": [...]}: the next calls' faults."""
        wanted = request.get_json(silent=True) or {}
        for platform, faults in wanted.items():
            if platform not in credentials or any(fault not in FAULTS for fault in faults):
                return jsonify(error=f"faults are {', '.join(FAULTS)} per platform"), 400
            with calls.lock:
                calls.faults.setdefault(platform, deque()).extend(faults)
        return jsonify(queued=wanted)

    @app.get("/_sim/faults")
    def queued_faults():
        """The faults still waiting for a call, per platform."""
        with calls.lock:
            return jsonify({platform: list(queue) for platform, queue in calls.faults.items()})

    @app.post("/_sim/reset")
    def forget():
        calls.forget()
        holdings.forget()
        channels.forget()
        return jsonify(reset=True)

    @app.post("/_sim/records")
    def hold_records():
        """[{"platform", "message_id", "topic", "payload", "shop_ref"}, ...]: messages the
        platform holds (pushed or not), as its listings will show them."""
        held = 0
        for sent in request.get_json(silent=True) or []:
            platform = registry().get(str(sent.get("platform")))
            if platform is None:
                return jsonify(error=f"no simulated platform {sent.get('platform')!r}"), 400
            record = platform.held_record(Message(**sent))
            if record is not None:
                holdings.hold(platform.name, record)
                held += 1
        return jsonify(held=held)

    @app.post("/_sim/channel")
    def publish():
        """{"messages": [{"platform", "message_id", "topic", "payload", "shop_ref"}, ...],
        "thin": true}: messages the platforms put on their channels, in this order
        (an id twice: delivered twice), their records held for the detail calls."""
        wanted = request.get_json(silent=True) or {}
        now = datetime.now(UTC)
        for sent in wanted.get("messages", []):
            platform = registry().get(str(sent.get("platform")))
            if platform is None or platform.channel is None:
                return jsonify(error=f"no simulated channel for {sent.get('platform')!r}"), 400
            message = Message(**sent)
            app_key = credentials[platform.name].app_key
            body = platform.channel_message(message, app_key, now, bool(wanted.get("thin", True)))
            channels.publish(platform.name, message.message_id, body, now)
            record = platform.held_record(message)
            if record is not None:
                holdings.hold(platform.name, record)
        return jsonify(published=len(wanted.get("messages", [])))

    @app.get("/_sim/channel")
    def channel_state():
        return jsonify(channels.state(datetime.now(UTC)))

    @app.get("/_sim/calls")
    def received_calls():
        with calls.lock:
            return jsonify(calls.received)

    @app.post("/_sim/sessions")
    def issue_session():
        """Tokens for a seller without the browser dance (seeding demo shops)."""
        body = request.get_json(silent=True) or {}
        return jsonify(grants.tokens(str(body.get("seller", "")), str(body.get("nick", ""))))

    return app


def channel_methods(channel: ChannelMethods | None) -> tuple[str, ...]:
    if channel is None:
        return ()
    return (channel.permit, *channel.app_level)


def publish(base_url: str, messages: Iterable[Message], thin: bool = True) -> int:
    """Put these messages on their platforms' channels, in order."""
    answer = requests.post(
        f"{base_url}/_sim/channel",
        json={"messages": [asdict(message) for message in messages], "thin": thin},
        timeout=10,
    )
    answer.raise_for_status()
    return int(answer.json()["published"])


def drop_connection(environ: Mapping[str, object]) -> None:
    """Drop the client's connection instead of answering (a reset, to the client:
    the request went out and no answer will ever come). Werkzeug's server only."""
    connection = environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.shutdown(socket.SHUT_RDWR)


class _PathOnlyLog(WSGIRequestHandler):
    """Access lines without the query string: JD-style token requests carry the
    app secret there (platforms.md section 3), and it must not reach a console."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.partition("?")[0]
        self.log("info", '"%s %s" %s %s', self.command, path, code, size)


def serve(
    host: str,
    port: int,
    credentials: Mapping[str, AppCredentials],
    hold_seconds: float = TIMEOUT_HOLD_SECONDS,
) -> BaseWSGIServer:
    """Start the simulator on a background thread; the caller shuts it down."""
    server = make_server(
        host,
        port,
        create_app(credentials, hold_seconds),
        threaded=True,
        request_handler=_PathOnlyLog,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def oauth_urls(base_url: str) -> dict[str, str]:
    """The OAuth base URL of each simulated platform."""
    return {name: f"{base_url}/{name}" for name in registry()}


def api_urls(base_url: str) -> dict[str, str]:
    """The API endpoint of each simulated platform (SHOPHOOK_<PLATFORM>_API_URL)."""
    return {name: f"{base_url}/{name}{platform.api_path}" for name, platform in registry().items()}


def shophook_settings(base_url: str) -> dict[str, str]:
    """ShopHook's environment for a simulator at `base_url`: each platform's OAuth
    and API URL."""
    return {
        **{platform_variable(name, "oauth_url"): url for name, url in oauth_urls(base_url).items()},
        **{platform_variable(name, "api_url"): url for name, url in api_urls(base_url).items()},
    }


def issue_session(base_url: str, seller: str, nick: str = "") -> dict[str, object]:
    """Tokens for a seller, as the simulated platform's token endpoint answers them."""
    answer = requests.post(
        f"{base_url}/_sim/sessions", json={"seller": seller, "nick": nick}, timeout=5
    )
    answer.raise_for_status()
    return answer.json()


def hold_records(base_url: str, messages: Iterable[Message]) -> int:
    """Have the simulated platforms hold these messages' records (pushed or not):
    what their listings then show. Returns how many a listing shows."""
    answer = requests.post(
        f"{base_url}/_sim/records", json=[asdict(message) for message in messages], timeout=10
    )
    answer.raise_for_status()
    return int(answer.json()["held"])
