"""Benchmark 3: cold start. Import time of app.py against the floor of importing
chalice, boto3 and pynamodb alone, each in a fresh interpreter, in the same run;
and the size of the deployment package `chalice package` builds."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import Report, summary
from shophook.package import trim
from shophook.stage import deployed_environment

PROJECT = Path(__file__).resolve().parents[1]
FLOOR = "import chalice, boto3, pynamodb.models"
SHOPHOOK = "import app"
TIMER = "import time; t = time.perf_counter(); {imports}; print(time.perf_counter() - t)"
PACKAGE_TARGET_MB = 15


def _import_seconds(imports: str) -> float:
    # The functions' own environment (.chalice/config.json), as Lambda starts them.
    env = {
        **os.environ,
        **deployed_environment(),
        "AWS_DEFAULT_REGION": "us-east-1",
        "SHOPHOOK_TABLE_PREFIX": "bench-",
    }
    done = subprocess.run(
        [sys.executable, "-c", TIMER.format(imports=imports)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def cold_start(runs: int = 7) -> Report:
    samples: dict[str, list[float]] = {FLOOR: [], SHOPHOOK: []}
    for _ in range(runs):
        for imports in samples:  # interleaved, so both see the same machine
            samples[imports].append(_import_seconds(imports) * 1000)
    report = Report(
        "3-cold-start",
        f"3. Cold start: import time in a fresh interpreter, ms ({runs} runs each)",
        ["import", "median", "p95", "p99", "min", "max", "vs floor"],
    )
    floor = summary(samples[FLOOR])["median"]
    for imports, values in samples.items():
        stats = summary(values)
        report.add(
            imports,
            stats["median"],
            stats["p95"],
            stats["p99"],
            stats["min"],
            stats["max"],
            f"{stats['median'] / floor:.2f}x",
        )
    size_mb = _package_mb()
    report.notes.append(
        f"deployment.zip from `chalice package`: {size_mb:.1f} MB "
        f"(target <= {PACKAGE_TARGET_MB} MB: {'met' if size_mb <= PACKAGE_TARGET_MB else 'missed'})"
    )
    report.notes.append("Target: app.py at most 1.3x the floor.")
    report.rows.append(
        ["deployment.zip (MB)", size_mb, "", "", "", "", f"target {PACKAGE_TARGET_MB}"]
    )
    return report


def _package_mb() -> float:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [str(Path(sys.executable).parent / "chalice"), "package", "--stage", "dev", out],
            cwd=PROJECT,
            env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
            capture_output=True,
            check=True,
        )
        _, after = trim(Path(out) / "deployment.zip")
        return after / 1_000_000
