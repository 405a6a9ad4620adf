"""What ops see: EMF metrics per outcome, JSON logs with correlation ids, no secrets."""

from __future__ import annotations

import json
from datetime import timedelta

import time_machine

from chalicelib.platforms.doudian import push_sign
from chalicelib.service.sweep import sweep
from simulator.scenarios import DEMO_CREDENTIALS, Message, taobao_order
from tests.support import NOW, tell_changes

START = NOW - timedelta(hours=40)
ORDER = taobao_order("3090001", START)


def output_lines(capfd, log_stream=None) -> list[dict]:
    captured = capfd.readouterr()
    logged = ""
    if log_stream is not None:
        logged = log_stream.getvalue()
        log_stream.seek(0)
        log_stream.truncate()
    lines = []
    for line in (captured.out + captured.err + logged).splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def metric_names(lines: list[dict]) -> list[str]:
    return [
        metric["Name"]
        for line in lines
        if "_aws" in line
        for directive in line["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    ]


def test_emf_metrics_for_a_webhook_a_rejection_a_duplicate_and_a_breach(stack, capfd):
    stack.deliver(ORDER[1])
    stored = output_lines(capfd)
    assert {"WebhookReceived", "WebhookApplied", "IngestLatency"} <= set(metric_names(stored))
    emf = next(line for line in stored if "WebhookApplied" in line)
    assert emf["platform"] == "taobao" and emf["_aws"]["CloudWatchMetrics"][0]["Namespace"]

    stack.deliver(ORDER[1])
    assert "WebhookDuplicate" in metric_names(output_lines(capfd))

    stack.send(ORDER[2].signed(DEMO_CREDENTIALS["taobao"], NOW - timedelta(hours=1)))
    rejected = output_lines(capfd)
    assert {"WebhookRejected", "WebhookRejectedByReason"} <= set(metric_names(rejected))
    assert (
        next(line for line in rejected if "WebhookRejectedByReason" in line)["reason"]
        == "stale_timestamp"
    )

    # A breach is counted when the change that found it is told (its stream read).
    tell_changes()
    output_lines(capfd)
    due = START + timedelta(hours=0.1, seconds=48 * 3600 + 1)
    with time_machine.travel(due, tick=False):
        sweep(due)
    assert "DeadlinesBreached" not in metric_names(output_lines(capfd))
    tell_changes(due)
    assert "DeadlinesBreached" in metric_names(output_lines(capfd))


def test_log_lines_carry_the_message_and_shop_as_keys(stack, capfd, log_stream):
    stack.deliver(ORDER[1])
    logs = [
        line for line in output_lines(capfd, log_stream) if line.get("message") == "webhook stored"
    ]
    assert logs[0]["correlation_id"] == f"taobao:{ORDER[1].message_id}"
    assert logs[0]["shop_id"] == "taobao:2200000001"
    stack.get("/shops/taobao:2200000001/orders/3090001")
    later = [line for line in output_lines(capfd, log_stream) if "correlation_id" in line]
    assert later == []  # the next invocation starts clean


def test_no_secret_key_or_signature_reaches_a_log_or_an_answer(stack, capfd, log_stream):
    secrets = ["demo-secret", "demo-jd-secret", stack.api_key]
    answers = []
    for message in ORDER:
        answers.append(stack.deliver(message))
    bad = Message("taobao", "x", ORDER[1].topic, {**ORDER[1].payload, "payment": "?"}, "2200000001")
    answers.append(stack.deliver(bad))
    tampered = ORDER[0].signed(DEMO_CREDENTIALS["taobao"], NOW)
    answers.append(
        stack.request(
            "POST", tampered.path.replace("sign=", "sign=0"), tampered.body, tampered.headers
        )
    )
    answers.append(stack.get("/shops/taobao:2200000001/orders/3090001"))
    answers.append(stack.get("/shops/taobao:2200000001/orders/3090001", "shk_wrong"))
    captured = capfd.readouterr()
    everything = (
        captured.out + captured.err + "".join(json.dumps(a.body, default=str) for a in answers)
    )
    for secret in secrets:
        assert secret not in everything
    signatures = [
        part.split("=", 1)[1] for part in tampered.path.split("&") if part.startswith("sign=")
    ]
    assert signatures and signatures[0] not in everything


def test_a_delivery_lost_to_storage_is_counted_as_one_message_or_a_whole_push(
    stack, faults, capfd, log_stream
):
    faults.fail_next("TransactGetItems")
    assert stack.deliver(ORDER[1]).status == 503
    # A Doudian push that is not an array is quarantined whole; that write fails here.
    faults.fail_next("UpdateItem")
    body = b'{"tag": "200"}'
    app = DEMO_CREDENTIALS["doudian"]
    headers = {
        "Content-Type": "application/json",
        "app-id": app.app_key,
        "event-sign": push_sign(app.app_key, body, app.app_secret),
    }
    answer = stack.request("POST", "/webhooks/doudian", body, headers)
    assert answer.status == 503 and "storage_unavailable" in answer.body["msg"]
    lines = output_lines(capfd, log_stream)
    failures = [line["platform"] for line in lines if "WebhookStorageFailure" in line]
    assert failures == ["taobao", "doudian"]
    logged = [line["platform"] for line in lines if line.get("message") == "webhook not stored"]
    assert logged == ["taobao", "doudian"]
