"""Signed webhooks as the Taobao-style and JD-style platforms send them.

The simulator plays the platform, so it signs with the platform's own scheme
(the same functions ShopHook verifies with; tests check those against
independently computed vectors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.jd import PAYLOAD_FIELD
from chalicelib.platforms.signing import hmac_sha256_sign, joined_params, md5_sign
from chalicelib.platforms.wire import format_wire_time

TAOBAO_SIGNERS = {"md5": md5_sign, "hmac-sha256": hmac_sha256_sign}


@dataclass(frozen=True)
class SignedWebhook:
    """One HTTP request to ShopHook: path with query string, headers, body."""

    platform: str
    message_id: str
    path: str
    headers: dict[str, str]
    body: bytes


def taobao_webhook(
    credentials: AppCredentials,
    message_id: str,
    topic: str,
    user_id: str,
    content: dict[str, Any],
    sent_at: datetime,
    sign_method: str = "hmac-sha256",
) -> SignedWebhook:
    body = json.dumps(
        {
            "id": message_id,
            "topic": topic,
            "user_id": user_id,
            "user_nick": f"shop-{user_id}",
            "pub_time": format_wire_time(sent_at),
            "content": json.dumps(content, ensure_ascii=False),
        },
        ensure_ascii=False,
    ).encode()
    query = {
        "app_key": credentials.app_key,
        "timestamp": format_wire_time(sent_at),
        "sign_method": sign_method,
        "v": "2.0",
    }
    query["sign"] = TAOBAO_SIGNERS[sign_method](credentials.app_secret, joined_params(query) + body)
    return SignedWebhook(
        platform="taobao",
        message_id=message_id,
        path=f"/webhooks/taobao?{urlencode(query)}",
        headers={"Content-Type": "application/json; charset=utf-8"},
        body=body,
    )


def jd_webhook(
    credentials: AppCredentials,
    message_id: str,
    method: str,
    payload: dict[str, Any],
    sent_at: datetime,
) -> SignedWebhook:
    form = {
        "app_key": credentials.app_key,
        "timestamp": format_wire_time(sent_at),
        "v": "2.0",
        "method": method,
        "msg_id": message_id,
        PAYLOAD_FIELD: json.dumps(payload, ensure_ascii=False),
    }
    form["sign"] = md5_sign(credentials.app_secret, joined_params(form))
    return SignedWebhook(
        platform="jd",
        message_id=message_id,
        path="/webhooks/jd",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode(form).encode(),
    )
