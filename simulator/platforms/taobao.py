"""The simulated Taobao-style platform: TOP OAuth, the TOP API (form fields,
signed hmac-sha256, `error_response` with numeric codes) and its SPI pushes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Request

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.signing import hmac_sha256_sign, joined_params, md5_sign
from chalicelib.platforms.taobao import ALREADY_DONE_SUB_CODE
from chalicelib.platforms.wire import format_wire_time
from simulator.platforms.base import (
    ApiCall,
    ApiMethod,
    Refusal,
    signed_by_the_app,
)
from simulator.webhooks import SignedWebhook

if TYPE_CHECKING:
    from simulator.scenarios import Message

PUSH_SIGNERS = {"md5": md5_sign, "hmac-sha256": hmac_sha256_sign}
SUCCEEDED = {"succ": True}
# Refusal -> TOP's code, msg, sub_code, sub_msg.
REFUSALS = {
    Refusal.UNKNOWN_METHOD: ("22", "Invalid method {}", "", ""),
    Refusal.BAD_SIGNATURE: ("25", "Invalid signature", "", ""),
    Refusal.INVALID_SESSION: ("27", "Invalid session", "", ""),
    Refusal.RATE_LIMITED: ("7", "App Call Limited", "", ""),
    Refusal.MISSING_ARGUMENT: ("40", "Missing {}", "", ""),
    Refusal.ALREADY_DONE: ("15", "Remote service error", ALREADY_DONE_SUB_CODE, "状态不允许此操作"),
}

# Method -> its required business fields and its answer.
METHODS = {
    "taobao.rp.refunds.agree": ApiMethod(("refund_id", "amount", "refund_version"), SUCCEEDED),
    "taobao.rp.refunds.refuse": ApiMethod(("refund_id", "refuse_message"), SUCCEEDED),
    "taobao.rp.returngoods.agree": ApiMethod(("refund_id", "address", "name", "mobile"), SUCCEEDED),
    "taobao.rp.returngoods.confirm": ApiMethod(("refund_id",), SUCCEEDED),
    "taobao.logistics.offline.send": ApiMethod(("tid", "out_sid", "company_code"), SUCCEEDED),
}


class SimulatedTaobao:
    name = "taobao"
    demo_credentials = AppCredentials("demo-app-key", "demo-secret")
    demo_seller = "2200000001"
    demo_shop_name = "Demo Taobao-style shop"
    approve_seller = "2200000002"
    authorize_path = "/authorize"
    token_routes = (("POST", "/token"),)
    token_client_fields = ("client_id", "client_secret")
    api_path = "/router/rest"
    methods = METHODS

    def identity(self, seller: str, nick: str) -> dict[str, str]:
        return {"taobao_user_id": seller, "taobao_user_nick": nick}

    def api_call(self, request: Request, credentials: AppCredentials) -> ApiCall:
        form = dict(request.form)
        return ApiCall(
            method=form.get("method", ""),
            params=form,
            session=form.get("session", ""),
            business=form,
            signature_ok=signed_by_the_app(form, credentials, hmac_sha256_sign),
        )

    def success(self, method: str) -> dict[str, Any]:
        return {
            method.removeprefix("taobao.").replace(".", "_") + "_response": self.methods[
                method
            ].answer
        }

    def refusal(self, refusal: Refusal, detail: str) -> dict[str, Any]:
        code, text, sub_code, sub_text = REFUSALS[refusal]
        return {
            "error_response": {
                "code": int(code),
                "msg": text.format(detail),
                "sub_code": sub_code,
                "sub_msg": sub_text,
            }
        }

    def signed_push(
        self,
        message: Message,
        credentials: AppCredentials,
        sent_at: datetime,
        sign_method: str = "hmac-sha256",
    ) -> SignedWebhook:
        """A TOP push: the message as a JSON body, the signature in the query string."""
        body = json.dumps(
            {
                "id": message.message_id,
                "topic": message.topic,
                "user_id": message.shop_ref,
                "user_nick": f"shop-{message.shop_ref}",
                "pub_time": format_wire_time(sent_at),
                "content": json.dumps(message.payload, ensure_ascii=False),
            },
            ensure_ascii=False,
        ).encode()
        query = {
            "app_key": credentials.app_key,
            "timestamp": format_wire_time(sent_at),
            "sign_method": sign_method,
            "v": "2.0",
        }
        query["sign"] = PUSH_SIGNERS[sign_method](
            credentials.app_secret, joined_params(query) + body
        )
        return SignedWebhook(
            platform=self.name,
            message_id=message.message_id,
            path=f"/webhooks/{self.name}?{urlencode(query)}",
            headers={"Content-Type": "application/json; charset=utf-8"},
            body=body,
        )


PLATFORM = SimulatedTaobao()
