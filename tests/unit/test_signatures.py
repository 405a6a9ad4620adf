"""Signature verification against the contract's vectors and an independent oracle."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.platforms.base import AppCredentials, InboundRequest, WebhookRejectedError
from chalicelib.platforms.jd import PLATFORM as JD
from chalicelib.platforms.taobao import PLATFORM as TAOBAO
from chalicelib.platforms.wire import format_wire_time, parse_wire_time
from tests.support import NOW, oracle_taobao_query, oracle_top_sign

VECTORS = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "signature-vectors.json").read_text()
)["vectors"]
VECTOR_TIME = parse_wire_time("2026-11-23 10:00:05")
TAOBAO_APP = AppCredentials("demo-app-key", "demo-secret")
JD_APP = AppCredentials("demo-jd-key", "demo-jd-secret")


def taobao_request(params: dict[str, str], body: bytes) -> InboundRequest:
    return InboundRequest(query={k: [v] for k, v in params.items()}, headers={}, raw_body=body)


def jd_request(form: dict[str, str]) -> InboundRequest:
    return InboundRequest(query={}, headers={}, raw_body=urlencode(form).encode())


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v["kind"] == "taobao-push"],
    ids=lambda v: v["query"]["sign_method"],
)
def test_taobao_vectors_verify_and_match_the_oracle(vector):
    params = {**vector["query"], "sign": vector["sign"]}
    body = vector["body"].encode()
    assert oracle_top_sign(vector["secret"], params, body, params["sign_method"]) == vector["sign"]
    delivery = TAOBAO.verify(
        taobao_request(params, body), AppCredentials("demo-app-key", vector["secret"]), VECTOR_TIME
    )
    assert delivery.raw_body == body


def test_jd_vector_verifies_and_matches_the_oracle():
    (vector,) = [v for v in VECTORS if v["kind"] == "jd-push"]
    form = {**vector["form"], "sign": vector["sign"]}
    assert oracle_top_sign(vector["secret"], form, b"", "md5") == vector["sign"]
    delivery = JD.verify(jd_request(form), JD_APP, VECTOR_TIME)
    assert delivery.params["msg_id"] == "m-1"


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


def test_taobao_body_is_covered_by_the_signature():
    params = signed_taobao(body=b'{"id": "1"}')
    error = rejection(TAOBAO, taobao_request(params, b'{"id": "2"}'), TAOBAO_APP)
    assert error.code == "bad_signature"


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
    params["sign"] = oracle_top_sign("demo-secret", params, body, "md5")
    assert rejection(TAOBAO, taobao_request(params, body), TAOBAO_APP).code == "bad_timestamp"


def test_jd_rejects_tampered_field_and_undecodable_body():
    (vector,) = [v for v in VECTORS if v["kind"] == "jd-push"]
    form = {**vector["form"], "sign": vector["sign"], "msg_id": "m-2"}
    assert rejection(JD, jd_request(form), JD_APP, VECTOR_TIME).code == "bad_signature"
    garbage = InboundRequest(query={}, headers={}, raw_body=b"app_key=%ff%fe")
    error = rejection(JD, garbage, JD_APP)
    assert (error.status, error.code) == (400, "malformed_form")


text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@given(
    extra=st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12), text, max_size=5
    ),
    body=st.binary(max_size=300),
    method=st.sampled_from(["md5", "hmac-sha256"]),
)
def test_taobao_accepts_exactly_what_the_oracle_signs(extra, body, method):
    params = {
        **{
            k: v
            for k, v in extra.items()
            if k not in {"sign", "app_key", "timestamp", "sign_method"}
        },
        "app_key": "demo-app-key",
        "timestamp": format_wire_time(NOW),
        "sign_method": method,
    }
    params["sign"] = oracle_top_sign("demo-secret", params, body, method)
    TAOBAO.verify(taobao_request(params, body), TAOBAO_APP, NOW)
    for name in params:
        if name == "sign":
            continue
        tampered = {**params, name: params[name] + "x"}
        assert rejection(TAOBAO, taobao_request(tampered, body), TAOBAO_APP).status in (400, 401)


@given(
    extra=st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12), text, max_size=5
    ),
)
def test_jd_accepts_exactly_what_the_oracle_signs(extra):
    form = {
        **{k: v for k, v in extra.items() if k != "sign"},
        "app_key": "demo-jd-key",
        "timestamp": format_wire_time(NOW),
    }
    form["sign"] = oracle_top_sign("demo-jd-secret", form, b"", "md5")
    JD.verify(jd_request(form), JD_APP, NOW)
    tampered = {**form, "sign": form["sign"][:-1] + ("0" if form["sign"][-1] != "0" else "1")}
    assert rejection(JD, jd_request(tampered), JD_APP).code == "bad_signature"
