"""The simulated JD-style platform: JOS OAuth (GET token endpoints), the JOS
API (business fields as `360buy_param_json`, signed md5, `error_response` with
text codes, success keys spelt `responce`) and its form pushes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Request

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.jd import ALREADY_DONE_CODE, PAYLOAD_FIELD
from chalicelib.platforms.signing import joined_params, md5_sign
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

SUCCEEDED = {"code": "0"}
# Refusal -> JOS's code and text.
REFUSALS = {
    Refusal.UNKNOWN_METHOD: ("3", "Invalid method {}"),
    Refusal.BAD_SIGNATURE: ("4", "Invalid signature"),
    Refusal.INVALID_SESSION: ("8", "Invalid session"),
    Refusal.RATE_LIMITED: ("19", "App Call Limited"),
    Refusal.MISSING_ARGUMENT: ("6", "Missing {}"),
    Refusal.ALREADY_DONE: (ALREADY_DONE_CODE, "the status does not allow this operation"),
}

# Method -> its required business fields and its answer.
METHODS = {
    "jingdong.pop.refund.audit": ApiMethod(("id", "status"), SUCCEEDED),
    "jingdong.pop.afs.audit": ApiMethod(("afsServiceId", "approve"), SUCCEEDED),
    "jingdong.pop.afs.receive": ApiMethod(("afsServiceId",), SUCCEEDED),
    "jingdong.pop.order.shipment": ApiMethod(("orderId", "waybill", "logisticsId"), SUCCEEDED),
}


class SimulatedJd:
    name = "jd"
    demo_credentials = AppCredentials("demo-jd-key", "demo-jd-secret")
    demo_seller = "10000001"
    demo_shop_name = "Demo JD-style shop"
    approve_seller = "10000002"
    authorize_path = "/oauth2/to_login"
    token_routes = (("GET", "/oauth2/access_token"), ("GET", "/oauth2/refresh_token"))
    token_client_fields = ("app_key", "app_secret")
    api_path = "/routerjson"
    methods = METHODS

    def identity(self, seller: str, nick: str) -> dict[str, str]:
        return {"venderId": seller, "uid": nick}

    def api_call(self, request: Request, credentials: AppCredentials) -> ApiCall:
        form = dict(request.form)
        try:
            business = json.loads(form.get(PAYLOAD_FIELD, "{}"))
        except ValueError:
            business = {}
        return ApiCall(
            method=form.get("method", ""),
            params=form,
            session=form.get("access_token", ""),
            business=business if isinstance(business, dict) else {},
            signature_ok=signed_by_the_app(form, credentials, md5_sign),
        )

    def success(self, method: str) -> dict[str, Any]:
        return {method.replace(".", "_") + "_responce": self.methods[method].answer}

    def refusal(self, refusal: Refusal, detail: str) -> dict[str, Any]:
        code, text = REFUSALS[refusal]
        wording = text.format(detail)
        return {"error_response": {"code": code, "zh_desc": wording, "en_desc": wording}}

    def signed_push(
        self,
        message: Message,
        credentials: AppCredentials,
        sent_at: datetime,
    ) -> SignedWebhook:
        """A JOS push: one signed form (the payload names the shop)."""
        form = {
            "app_key": credentials.app_key,
            "timestamp": format_wire_time(sent_at),
            "v": "2.0",
            "method": message.topic,
            "msg_id": message.message_id,
            PAYLOAD_FIELD: json.dumps(message.payload, ensure_ascii=False),
        }
        form["sign"] = md5_sign(credentials.app_secret, joined_params(form))
        return SignedWebhook(
            platform=self.name,
            message_id=message.message_id,
            path=f"/webhooks/{self.name}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urlencode(form).encode(),
        )


PLATFORM = SimulatedJd()
