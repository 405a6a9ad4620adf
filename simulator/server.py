"""The platform simulator as an HTTP service, playing the Taobao-style and
JD-style platforms: OAuth (an approve page and the token endpoints of
platforms.md section 3) and the API methods of section 2, which check
ShopHook's signatures and sessions and answer in each platform's shapes.

Like the real platforms, a call that would repeat a step already taken (agree
a refund agreed, ship a trade shipped) is refused: Taobao-style with sub_code
`isv.status-not-allowed`, JD-style with code `66`.

Faults can be queued per platform (`POST /_sim/faults`): `rate_limit`,
`server_error`, `invalid_session`, `timeout` (the call is carried out, its
answer held back) and `reset` (carried out, then the connection is reset).
Every API call received is kept for inspection (`GET /_sim/calls`, each with
its answer and whether it was carried out);
`POST /_sim/reset` forgets calls, faults and steps taken.

`shophook local` starts it and points the OAuth and API URLs at it.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlencode

import requests
from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.jd import ALREADY_DONE_CODE, PAYLOAD_FIELD
from chalicelib.platforms.signing import (
    hmac_sha256_sign,
    joined_params,
    md5_sign,
    signatures_match,
)
from chalicelib.platforms.taobao import ALREADY_DONE_SUB_CODE
from chalicelib.settings import platform_variable

ACCESS_LIFETIME_SECONDS = 86400
REFRESH_LIFETIME_SECONDS = 30 * 86400
DEFAULT_SELLERS = {"taobao": "2200000002", "jd": "10000002"}
TIMEOUT_HOLD_SECONDS = 15  # longer than any client timeout ShopHook uses
FAULTS = ("rate_limit", "server_error", "timeout", "invalid_session", "reset")
TAOBAO_METHODS = {
    "taobao.rp.refunds.agree": ("refund_id", "amount", "refund_version"),
    "taobao.rp.refunds.refuse": ("refund_id", "refuse_message"),
    "taobao.rp.returngoods.agree": ("refund_id", "address", "name", "mobile"),
    "taobao.rp.returngoods.confirm": ("refund_id",),
    "taobao.logistics.offline.send": ("tid", "out_sid", "company_code"),
}
JD_METHODS = {
    "jingdong.pop.refund.audit": ("id", "status"),
    "jingdong.pop.afs.audit": ("afsServiceId", "approve"),
    "jingdong.pop.afs.receive": ("afsServiceId",),
    "jingdong.pop.order.shipment": ("orderId", "waybill", "logisticsId"),
}

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
        self, platform: str, method: str, params: dict[str, str], answer: str, carried_out: bool
    ) -> None:
        with self.lock:
            self.received.append(
                {
                    "platform": platform,
                    "method": method,
                    "params": params,
                    "answer": answer,
                    "carried_out": carried_out,
                }
            )

    def next_fault(self, platform: str) -> str | None:
        with self.lock:
            queue = self.faults.get(platform)
            return queue.popleft() if queue else None


def create_app(
    credentials: Mapping[str, AppCredentials], hold_seconds: float = TIMEOUT_HOLD_SECONDS
) -> Flask:
    app = Flask("shophook-simulator")
    grants = Grants()
    calls = Calls()

    def approve_page(platform: str, action: str) -> str:
        return _APPROVE_PAGE.format(
            platform=platform,
            action=action,
            redirect_uri=escape(request.args.get("redirect_uri", "")),
            state=escape(request.args.get("state", "")),
            seller=DEFAULT_SELLERS[platform],
        )

    def decide() -> Response:
        target = request.form.get("redirect_uri", "")
        state = request.form.get("state", "")
        if request.form.get("decision") != "approve":
            return redirect(f"{target}?{urlencode({'error': 'access_denied', 'state': state})}")
        code = grants.issue_code(request.form.get("seller", ""), request.form.get("nick", ""))
        return redirect(f"{target}?{urlencode({'code': code, 'state': state})}")

    def token_answer(platform: str, client: str, secret: str, fields: Mapping[str, str]):
        """Both platforms' token endpoints: the grant comes as a code or a refresh token."""
        expected = credentials[platform]
        if (client, secret) != (expected.app_key, expected.app_secret):
            return jsonify(error="invalid_client"), 401
        grant_type = fields.get("grant_type", "")
        value = fields.get("code" if grant_type == "authorization_code" else "refresh_token", "")
        granted = grants.redeem(grant_type, value)
        if granted is None:
            return jsonify(error="invalid_grant"), 400
        seller, nick = granted
        answer = grants.tokens(seller, nick)
        if platform == "taobao":
            answer |= {"taobao_user_id": seller, "taobao_user_nick": nick}
        else:
            answer |= {"venderId": seller, "uid": nick}
        return jsonify(answer)

    @app.get("/taobao/authorize")
    def taobao_authorize() -> str:
        return approve_page("taobao", "/taobao/authorize")

    @app.post("/taobao/authorize")
    def taobao_decide() -> Response:
        return decide()

    @app.post("/taobao/token")
    def taobao_token():
        form = request.form
        return token_answer(
            "taobao", form.get("client_id", ""), form.get("client_secret", ""), form
        )

    @app.get("/jd/oauth2/to_login")
    def jd_authorize() -> str:
        return approve_page("jd", "/jd/oauth2/to_login")

    @app.post("/jd/oauth2/to_login")
    def jd_decide() -> Response:
        return decide()

    @app.get("/jd/oauth2/access_token")
    @app.get("/jd/oauth2/refresh_token")
    def jd_token():
        query = request.args
        return token_answer("jd", query.get("app_key", ""), query.get("app_secret", ""), query)

    def api_call(
        platform: str,
        method: str,
        params: dict[str, str],
        signature_ok: bool,
        session: str,
        business: Mapping[str, object],
        required: tuple[str, ...],
    ):
        """Check and answer one API call; `error(code, text)` is the platform's shape."""
        error = _taobao_error if platform == "taobao" else _jd_error
        fault = calls.next_fault(platform)
        if fault == "server_error":
            answer = (jsonify(error="internal"), 500)
        elif fault == "rate_limit":
            answer = error("7" if platform == "taobao" else "19", "App Call Limited")
        elif not signature_ok:
            answer = error("25" if platform == "taobao" else "4", "Invalid signature")
        elif fault == "invalid_session" or session not in grants.sessions:
            answer = error("27" if platform == "taobao" else "8", "Invalid session")
        elif missing := [name for name in required if name not in business]:
            answer = error("40" if platform == "taobao" else "6", f"Missing {missing[0]}")
        elif not calls.take((platform, method, str(business[required[0]]))):
            answer = (
                _taobao_error(
                    "15", "Remote service error", ALREADY_DONE_SUB_CODE, "状态不允许此操作"
                )
                if platform == "taobao"
                else _jd_error(ALREADY_DONE_CODE, "the status does not allow this operation")
            )
        elif platform == "taobao":
            name = method.removeprefix("taobao.").replace(".", "_") + "_response"
            answer = jsonify({name: {"succ": True}})
        else:
            answer = jsonify({method.replace(".", "_") + "_responce": {"code": "0"}})
        response = app.make_response(answer)
        carried_out = response.status_code == 200 and "error_response" not in response.get_json()
        calls.record(platform, method, params, response.get_data(as_text=True), carried_out)
        if fault == "timeout":
            time.sleep(hold_seconds)
        if fault == "reset":
            drop_connection(request.environ)
        return response

    def signed_by_the_app(platform: str, form: dict[str, str]) -> bool:
        """The platform's check of a call: its app key, and the sign over every other field."""
        signer = hmac_sha256_sign if platform == "taobao" else md5_sign
        signed = {name: value for name, value in form.items() if name != "sign"}
        expected = signer(credentials[platform].app_secret, joined_params(signed))
        return form.get("app_key") == credentials[platform].app_key and signatures_match(
            expected, form.get("sign", "")
        )

    @app.post("/taobao/router/rest")
    def taobao_api():
        form = dict(request.form)
        method = form.get("method", "")
        signature_ok = signed_by_the_app("taobao", form)
        if method not in TAOBAO_METHODS:
            return _taobao_error("22", f"Invalid method {method}")
        return api_call(
            "taobao",
            method,
            form,
            signature_ok,
            form.get("session", ""),
            form,
            TAOBAO_METHODS[method],
        )

    @app.post("/jd/routerjson")
    def jd_api():
        form = dict(request.form)
        method = form.get("method", "")
        signature_ok = signed_by_the_app("jd", form)
        if method not in JD_METHODS:
            return _jd_error("3", f"Invalid method {method}")
        try:
            business = json.loads(form.get(PAYLOAD_FIELD, "{}"))
        except ValueError:
            business = {}
        return api_call(
            "jd",
            method,
            form,
            signature_ok,
            form.get("access_token", ""),
            business if isinstance(business, dict) else {},
            JD_METHODS[method],
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
        return jsonify(reset=True)

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


def _taobao_error(code: str, text: str, sub_code: str = "", sub_text: str = ""):
    return jsonify(
        {
            "error_response": {
                "code": int(code),
                "msg": text,
                "sub_code": sub_code,
                "sub_msg": sub_text,
            }
        }
    )


def drop_connection(environ: Mapping[str, object]) -> None:
    """Drop the client's connection instead of answering (a reset, to the client:
    the request went out and no answer will ever come). Werkzeug's server only."""
    connection = environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.shutdown(socket.SHUT_RDWR)


def _jd_error(code: str, text: str):
    return jsonify({"error_response": {"code": code, "zh_desc": text, "en_desc": text}})


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
    return {"taobao": f"{base_url}/taobao", "jd": f"{base_url}/jd"}


def api_urls(base_url: str) -> dict[str, str]:
    """The API endpoint of each simulated platform (SHOPHOOK_<PLATFORM>_API_URL)."""
    return {"taobao": f"{base_url}/taobao/router/rest", "jd": f"{base_url}/jd/routerjson"}


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
