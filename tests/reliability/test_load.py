"""Bounded load on loopback (tests/reliability/load.py, its own process, with
its own moto server): concurrent threads, a hard time limit, then the books:
nothing acknowledged is lost, nothing is applied twice, no 5xx."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.reliability.report import scaled


def test_concurrent_webhooks_lose_nothing_and_apply_nothing_twice(tally, request):
    seconds = scaled(8, 60)
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.load",
            "--seconds",
            str(seconds),
            "--threads",
            str(scaled(4, 8)),
            "--orders",
            str(scaled(10, 60)),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    tally.inputs += figures["webhooks"]
    tally.duplicates += figures["duplicates"]
    tally.lost += figures["lost"]
    tally.duplicated_effects += figures["applied_twice"]
    tally.server_errors += figures["server_errors"]
    request.node.user_properties.append(("load", figures))
    assert figures["webhooks"] > 0
    assert (figures["lost"], figures["applied_twice"], figures["server_errors"]) == (0, 0, 0)
