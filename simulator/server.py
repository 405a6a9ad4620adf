"""The platform simulator as an HTTP service: Taobao-style and JD-style OAuth
(an approve page and the token endpoints of platforms.md section 3).

`shophook local` starts it and points SHOPHOOK_<PLATFORM>_OAUTH_URL at it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import BaseWSGIServer, make_server

from chalicelib.platforms.base import AppCredentials

ACCESS_LIFETIME_SECONDS = 86400
REFRESH_LIFETIME_SECONDS = 30 * 86400
DEFAULT_SELLERS = {"taobao": "2200000002", "jd": "10000002"}

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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_code(self, seller: str, nick: str) -> str:
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = (seller, nick)
        return code

    def tokens(self, seller: str, nick: str) -> dict[str, object]:
        refresh = secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[refresh] = (seller, nick)
        return {
            "access_token": secrets.token_urlsafe(24),
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


def create_app(credentials: Mapping[str, AppCredentials]) -> Flask:
    app = Flask("shophook-simulator")
    grants = Grants()

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

    def token_answer(platform: str, client: str, secret: str, grant_type: str, value: str):
        expected = credentials[platform]
        if (client, secret) != (expected.app_key, expected.app_secret):
            return jsonify(error="invalid_client"), 401
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
        grant_type = form.get("grant_type", "")
        value = form.get("code" if grant_type == "authorization_code" else "refresh_token", "")
        return token_answer(
            "taobao", form.get("client_id", ""), form.get("client_secret", ""), grant_type, value
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
        grant_type = query.get("grant_type", "")
        value = query.get("code" if grant_type == "authorization_code" else "refresh_token", "")
        return token_answer(
            "jd", query.get("app_key", ""), query.get("app_secret", ""), grant_type, value
        )

    return app


def serve(host: str, port: int, credentials: Mapping[str, AppCredentials]) -> BaseWSGIServer:
    """Start the simulator on a background thread; the caller shuts it down."""
    server = make_server(host, port, create_app(credentials), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def oauth_urls(base_url: str) -> dict[str, str]:
    """The OAuth base URL of each simulated platform."""
    return {"taobao": f"{base_url}/taobao", "jd": f"{base_url}/jd"}
