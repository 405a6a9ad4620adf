"""Signature verification against the contract's vectors and an independent oracle."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.platforms.base import AppCredentials, InboundRequest, WebhookRejectedError
from chalicelib.platforms.doudian import PLATFORM as DOUDIAN
from chalicelib.platforms.doudian import api_sign as doudian_api_sign
from chalicelib.platforms.doudian import param_json as doudian_param_json
from chalicelib.platforms.jd import PLATFORM as JD
from chalicelib.platforms.jd import PUSH_FIELDS
from chalicelib.platforms.signing import (
    hmac_sha256_sign,
    joined_params,
    md5_sign,
    without_blank,
)
from chalicelib.platforms.taobao import PLATFORM as TAOBAO
from chalicelib.platforms.wire import format_wire_time, parse_wire_time
from tests.support import (
    NOW,
    SIGNATURE_VECTORS,
    oracle_blank,
    oracle_sdk_sign,
    oracle_spi_sign,
    oracle_taobao_query,
)

VECTOR_TIME = parse_wire_time("2026-11-23 10:00:05")
TAOBAO_APP = AppCredentials("demo-app-key", "demo-secret")
JD_APP = AppCredentials("demo-jd-key", "demo-jd-secret")
API_SIGNERS = {"taobao-api": ("hmac-sha256", hmac_sha256_sign), "jd-api": ("md5", md5_sign)}


def vectors(*kinds: str) -> list[dict]:
    return [vector for vector in SIGNATURE_VECTORS if vector["kind"] in kinds]


def vector_id(vector: dict) -> str:
    return f"{vector['kind']}: {vector.get('note', 'plain')[:40]}"


def taobao_request(
    params: dict[str, str], body: bytes, headers: dict[str, str] | None = None
) -> InboundRequest:
    return InboundRequest(
        query={k: [v] for k, v in params.items()}, headers=headers or {}, raw_body=body
    )


def jd_request(form: dict[str, str]) -> InboundRequest:
    return InboundRequest(query={}, headers={}, raw_body=urlencode(form).encode())


@pytest.mark.parametrize("vector", vectors("taobao-push"), ids=vector_id)
def test_taobao_push_vectors_verify_and_match_the_oracle(vector):
    params = {**vector["query"], "sign": vector["sign"]}
    headers = vector.get("headers", {})
    body = vector["body"].encode()
    method = params.get("sign_method", "md5")
    assert oracle_spi_sign(vector["secret"], params, body, method, headers) == vector["sign"]
    delivery = TAOBAO.verify(
        taobao_request(params, body, headers),
        AppCredentials("demo-app-key", vector["secret"]),
        VECTOR_TIME,
    )
    assert delivery.raw_body == body


@pytest.mark.parametrize("vector", vectors("jd-push"), ids=vector_id)
def test_jd_push_vectors_verify_and_match_the_oracle(vector):
    form = {**vector["form"], "sign": vector["sign"]}
    assert oracle_sdk_sign(vector["secret"], form, "md5") == vector["sign"]
    delivery = JD.verify(jd_request(form), JD_APP, VECTOR_TIME)
    assert delivery.params["msg_id"] == vector["form"]["msg_id"]


@pytest.mark.parametrize("vector", vectors(*API_SIGNERS), ids=vector_id)
def test_api_call_vectors_are_what_the_signer_and_the_oracle_make(vector):
    method, signer = API_SIGNERS[vector["kind"]]
    assert oracle_sdk_sign(vector["secret"], vector["form"], method) == vector["sign"]
    assert signer(vector["secret"], joined_params(without_blank(vector["form"]))) == vector["sign"]


def signed_taobao(method: str = "md5", body: bytes = b"{}", **overrides: str) -> dict[str, str]:
    params = oracle_taobao_query(body, method)
    params.update(overrides)
    return params


def rejection(platform, request, credentials, now=NOW) -> WebhookRejectedError:
    with pytest.raises(WebhookRejectedError) as caught:
        platform.verify(request, credentials, now)
    return caught.value


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sign": "0" * 32}, "bad_signature"),
        ({"sign": ""}, "missing_signature"),
        ({"app_key": "someone-else"}, "unknown_app_key"),
        ({"app_key": ""}, "missing_app_key"),
        ({"sign_method": "sha1"}, "unsupported_sign_method"),
    ],
)
def test_taobao_rejections_are_401_with_a_specific_code(change, code):
    error = rejection(TAOBAO, taobao_request(signed_taobao(**change), b"{}"), TAOBAO_APP)
    assert (error.status, error.code) == (401, code)


def test_taobao_without_sign_method_is_md5():
    body = b"{}"
    params = {"app_key": "demo-app-key", "timestamp": format_wire_time(NOW), "v": "2.0"}
    md5_signed = {**params, "sign": oracle_spi_sign("demo-secret", params, body, "md5")}
    TAOBAO.verify(taobao_request(md5_signed, body), TAOBAO_APP, NOW)
    hmac_signed = {**params, "sign": oracle_spi_sign("demo-secret", params, body, "hmac-sha256")}
    assert rejection(TAOBAO, taobao_request(hmac_signed, body), TAOBAO_APP).code == "bad_signature"


def test_taobao_body_is_covered_by_the_signature():
    params = signed_taobao(body=b'{"id": "1"}')
    error = rejection(TAOBAO, taobao_request(params, b'{"id": "2"}'), TAOBAO_APP)
    assert error.code == "bad_signature"


def test_a_header_the_push_lists_is_signed_and_one_it_does_not_is_not():
    body = b"{}"
    headers = {"top-sign-list": "x-top-trace,x-top-gone", "x-top-trace": "trace%201"}
    params = oracle_taobao_query(body, "md5")
    params["sign"] = oracle_spi_sign("demo-secret", params, body, "md5", headers)
    TAOBAO.verify(taobao_request(params, body, {**headers, "x-other": "free"}), TAOBAO_APP, NOW)
    # The same decoded value, encoded another way, signs the same.
    TAOBAO.verify(
        taobao_request(params, body, {**headers, "x-top-trace": "trace+1"}), TAOBAO_APP, NOW
    )
    for changed in ({"x-top-trace": "trace%202"}, {"x-top-gone": "here"}, {"top-sign-list": ""}):
        request = taobao_request(params, body, {**headers, **changed})
        assert rejection(TAOBAO, request, TAOBAO_APP).code == "bad_signature", changed


def test_a_listed_header_named_like_a_query_parameter_is_ambiguous():
    params = signed_taobao()
    headers = {"top-sign-list": "v", "v": "2.0"}
    error = rejection(TAOBAO, taobao_request(params, b"{}", headers), TAOBAO_APP)
    assert (error.status, error.code) == (400, "duplicate_parameter")


def test_a_parameter_given_twice_is_refused():
    params = signed_taobao()
    request = InboundRequest(
        query={**{k: [v] for k, v in params.items()}, "v": ["2.0", "2.0"]},
        headers={},
        raw_body=b"{}",
    )
    assert rejection(TAOBAO, request, TAOBAO_APP).code == "duplicate_parameter"


@pytest.mark.parametrize("method", ["md5", "hmac-sha256"])
@pytest.mark.parametrize(
    ("skew", "accepted"),
    [
        (timedelta(minutes=10), True),
        (timedelta(minutes=-10), True),
        (timedelta(minutes=10, seconds=1), False),
        (timedelta(minutes=-10, seconds=-1), False),
    ],
)
def test_timestamp_window_is_ten_minutes_either_way(method, skew, accepted):
    request = taobao_request(signed_taobao(method), b"{}")
    now = NOW + skew
    if accepted:
        TAOBAO.verify(request, TAOBAO_APP, now)
    else:
        assert rejection(TAOBAO, request, TAOBAO_APP, now).code == "stale_timestamp"


def test_garbled_timestamp_is_refused_by_name():
    body = b"{}"
    params = {"app_key": "demo-app-key", "timestamp": "yesterday", "sign_method": "md5", "v": "2.0"}
    params["sign"] = oracle_spi_sign("demo-secret", params, body, "md5")
    assert rejection(TAOBAO, taobao_request(params, body), TAOBAO_APP).code == "bad_timestamp"


def test_jd_rejects_tampered_field_and_undecodable_body():
    (vector, _) = vectors("jd-push")
    form = {**vector["form"], "sign": vector["sign"], "msg_id": "m-2"}
    assert rejection(JD, jd_request(form), JD_APP, VECTOR_TIME).code == "bad_signature"
    garbage = InboundRequest(query={}, headers={}, raw_body=b"app_key=%ff%fe")
    error = rejection(JD, garbage, JD_APP)
    assert (error.status, error.code) == (400, "malformed_form")


def test_a_jd_field_outside_the_push_is_refused_by_name_even_when_signed():
    (vector, _) = vectors("jd-push")
    form = {**vector["form"], "partner": "x"}
    form["sign"] = oracle_sdk_sign(vector["secret"], form, "md5")
    error = rejection(JD, jd_request(form), JD_APP, VECTOR_TIME)
    assert (error.status, error.code) == (400, "unexpected_field")
    assert "'partner'" in error.message


# Text with every kind of character the platforms' blank rule must judge: the
# Java whitespace, the no-break spaces it does not count, and the rest.
whitespace = st.text(
    st.sampled_from(" \t\n\r\x0b\x0c\x1c\u3000\u2028\u00a0\u2007\u202f\x85"), max_size=3
)
text = whitespace | st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
header_names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)


@given(
    extra=st.dictionaries(names, text, max_size=5),
    headers=st.dictionaries(header_names, text, max_size=4),
    listed=st.lists(header_names, max_size=4, unique=True),
    body=st.binary(max_size=300),
    method=st.sampled_from([None, "md5", "hmac-sha256"]),
)
def test_taobao_accepts_exactly_what_the_oracle_signs(extra, headers, listed, body, method):
    params = {
        **{
            k: v
            for k, v in extra.items()
            if k not in {"sign", "app_key", "timestamp", "sign_method"}
        },
        "app_key": "demo-app-key",
        "timestamp": format_wire_time(NOW),
        **({"sign_method": method} if method else {}),
    }
    sent_headers = {
        name: quote(value)
        for name, value in headers.items()
        if name not in {"top-sign-list", "sign", *params}
    }
    listed = [name for name in listed if name not in {"top-sign-list", "sign", *params}]
    sent_headers["top-sign-list"] = ",".join(listed)
    params["sign"] = oracle_spi_sign("demo-secret", params, body, method or "md5", sent_headers)
    TAOBAO.verify(taobao_request(params, body, sent_headers), TAOBAO_APP, NOW)
    for name in params:
        if name == "sign":
            continue
        tampered = {**params, name: params[name] + "x"}
        request = taobao_request(tampered, body, sent_headers)
        assert rejection(TAOBAO, request, TAOBAO_APP).status in (400, 401)
    for name in listed:
        changed = {**sent_headers, name: sent_headers.get(name, "") + "x"}
        request = taobao_request(params, body, changed)
        assert rejection(TAOBAO, request, TAOBAO_APP).code == "bad_signature"


@given(fields=st.dictionaries(st.sampled_from(sorted(PUSH_FIELDS - {"sign", "app_key"})), text))
def test_jd_signs_every_field_but_blank_ones(fields):
    form = {**fields, "app_key": "demo-jd-key", "timestamp": format_wire_time(NOW)}
    form["sign"] = oracle_sdk_sign("demo-jd-secret", form, "md5")
    JD.verify(jd_request(form), JD_APP, NOW)
    for name, value in fields.items():
        if name == "timestamp":
            continue
        if oracle_blank(value):
            # Left out of the sign: dropping it or blanking it otherwise changes nothing.
            JD.verify(jd_request({k: v for k, v in form.items() if k != name}), JD_APP, NOW)
            JD.verify(jd_request({**form, name: " "}), JD_APP, NOW)
        else:
            tampered = {**form, name: value + "x"}
            assert rejection(JD, jd_request(tampered), JD_APP).code == "bad_signature"


@given(name=names.filter(lambda name: name not in PUSH_FIELDS), sign=text)
def test_a_jd_field_outside_the_push_is_refused_before_the_signature(name, sign):
    form = {"app_key": "demo-jd-key", "timestamp": format_wire_time(NOW), name: "1", "sign": sign}
    error = rejection(JD, jd_request(form), JD_APP)
    assert (error.status, error.code) == (400, "unexpected_field")
    assert f"'{name}'" in error.message


# Doudian-style (platforms.md 1.3, 2.4): oracles written from the contract's text.
DOUDIAN_APP = AppCredentials("demo-dd-key", "demo-dd-secret")


def oracle_doudian_push_sign(app_key: str, body: bytes, secret: str) -> str:
    return hashlib.md5(app_key.encode() + body + secret.encode()).hexdigest()


def oracle_doudian_api_sign(
    app_key: str, secret: str, method: str, param_json: str, timestamp: str
) -> str:
    pairs = [("app_key", app_key), ("method", method), ("param_json", param_json)]
    pairs += [("timestamp", timestamp), ("v", "2")]
    text = secret + "".join(name + value for name, value in pairs) + secret
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def doudian_request(body: bytes, headers: dict[str, str]) -> InboundRequest:
    return InboundRequest(query={}, headers=headers, raw_body=body)


@pytest.mark.parametrize("vector", vectors("doudian-push"), ids=vector_id)
def test_doudian_push_vectors_verify_and_match_the_oracle(vector):
    body = vector["body"].encode()
    assert oracle_doudian_push_sign(vector["app_key"], body, vector["secret"]) == vector["sign"]
    credentials = AppCredentials(vector["app_key"], vector["secret"])
    # Compared case-insensitively: the platform may send it upper-case.
    for sign in (vector["sign"], vector["sign"].upper()):
        headers = {"App-Id": vector["app_key"], "Event-Sign": sign}
        assert DOUDIAN.verify(doudian_request(body, headers), credentials, NOW).raw_body == body


@pytest.mark.parametrize("vector", vectors("doudian-api"), ids=vector_id)
def test_doudian_api_vectors_are_what_the_signer_and_the_oracle_make(vector):
    credentials = AppCredentials(vector["app_key"], vector["secret"])
    timestamp = str(vector["timestamp"])
    business = json.loads(vector["param_json"])
    assert doudian_param_json(business) == vector["param_json"]
    made = doudian_api_sign(credentials, vector["method"], vector["param_json"], timestamp)
    oracle = oracle_doudian_api_sign(
        vector["app_key"], vector["secret"], vector["method"], vector["param_json"], timestamp
    )
    assert made == oracle == vector["sign"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"event-sign": "0" * 32}, "bad_signature"),
        ({"event-sign": ""}, "missing_signature"),
        ({"app-id": "someone-else"}, "unknown_app_key"),
        ({"app-id": ""}, "missing_app_key"),
    ],
)
def test_doudian_rejections_are_401_with_a_specific_code(headers, code):
    body = b'[{"tag":"0","msg_id":"1","data":"{}"}]'
    signed = {
        "app-id": "demo-dd-key",
        "event-sign": oracle_doudian_push_sign("demo-dd-key", body, "demo-dd-secret"),
    }
    error = rejection(DOUDIAN, doudian_request(body, {**signed, **headers}), DOUDIAN_APP)
    assert (error.status, error.code) == (401, code)


@given(body=st.binary(max_size=300), tamper=st.integers(min_value=0, max_value=299))
def test_doudian_accepts_exactly_what_the_oracle_signs(body, tamper):
    sign = oracle_doudian_push_sign("demo-dd-key", body, "demo-dd-secret")
    headers = {"app-id": "demo-dd-key", "event-sign": sign}
    assert DOUDIAN.verify(doudian_request(body, headers), DOUDIAN_APP, NOW).raw_body == body
    if body:
        index = tamper % len(body)
        changed = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        error = rejection(DOUDIAN, doudian_request(changed, headers), DOUDIAN_APP)
        assert error.code == "bad_signature"


@given(
    business=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(
            st.text(max_size=12),
            st.integers(min_value=-(10**12), max_value=10**12),
            st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=3),
        ),
        max_size=5,
    ),
    method=st.sampled_from(["order.orderDetail", "afterSale.operate", "token.create"]),
    timestamp=st.integers(min_value=1_700_000_000, max_value=1_900_000_000),
)
def test_doudian_api_sign_is_the_oracle_over_sorted_compact_json(business, method, timestamp):
    param_json = doudian_param_json(business)
    decoded = json.loads(param_json)
    # Sorted recursively and compact, non-ASCII as itself; blank values left out.
    assert param_json == json.dumps(
        decoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert all(value not in ("", None) and str(value).strip() for value in decoded.values())
    made = doudian_api_sign(DOUDIAN_APP, method, param_json, str(timestamp))
    oracle = oracle_doudian_api_sign(
        "demo-dd-key", "demo-dd-secret", method, param_json, str(timestamp)
    )
    assert made == oracle
