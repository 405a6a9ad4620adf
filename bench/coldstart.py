"""Benchmark 3: cold start. Import time of app.py against the floor of importing
chalice, boto3 and pynamodb alone, each in a fresh interpreter, in the same run,
both from the deployment package as Lambda unpacks it (boto3 from the
environment, as the runtime provides it); and that package's size. The package
is also measured without its bytecode, as `chalice package` alone ships it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.report import Report, summary
from shophook.package import trim
from shophook.stage import deployed_environment

PROJECT = Path(__file__).resolve().parents[1]
FLOOR = "import chalice, boto3, pynamodb.models"
SHOPHOOK = "import app"
SOURCES_ONLY = "import app, package without bytecode"
TIMER = "import time; t = time.perf_counter(); {imports}; print(time.perf_counter() - t)"
PACKAGE_TARGET_MB = 15


def _import_seconds(imports: str, unpacked: Path) -> float:
    # The functions' own environment (.chalice/config.json), as Lambda starts them.
    env = {
        **os.environ,
        **deployed_environment(),
        "AWS_DEFAULT_REGION": "us-east-1",
        "SHOPHOOK_TABLE_PREFIX": "bench-",
        # /var/task is read-only: a cold start cannot keep what it compiles.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", TIMER.format(imports=imports)],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def cold_start(runs: int = 7) -> Report:
    samples: dict[str, list[float]] = {FLOOR: [], SHOPHOOK: [], SOURCES_ONLY: []}
    with tempfile.TemporaryDirectory() as scratch:
        size_mb, shipped = _package(Path(scratch))
        sources_only = Path(scratch) / "sources-only"
        shutil.copytree(shipped, sources_only, ignore=shutil.ignore_patterns("__pycache__"))
        where = {
            FLOOR: (FLOOR, shipped),
            SHOPHOOK: (SHOPHOOK, shipped),
            SOURCES_ONLY: (SHOPHOOK, sources_only),
        }
        for _ in range(runs):
            for name, (imports, unpacked) in where.items():  # interleaved: same machine for all
                samples[name].append(_import_seconds(imports, unpacked) * 1000)
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
    report.notes.append(
        f"deployment.zip from `chalice package`: {size_mb:.1f} MB "
        f"(target <= {PACKAGE_TARGET_MB} MB: {'met' if size_mb <= PACKAGE_TARGET_MB else 'missed'})"
    )
    report.notes.append(
        "Both from the package unpacked as Lambda runs it; without bytecode is what "
        "`chalice package` alone ships (every module compiled at each cold start)."
    )
    report.notes.append("Target: app.py at most 1.5x the floor (moonshot 1.3x).")
    report.rows.append(
        ["deployment.zip (MB)", size_mb, "", "", "", "", f"target {PACKAGE_TARGET_MB}"]
    )
    return report


def _package(scratch: Path) -> tuple[float, Path]:
    """Build and trim the package as `make package` does; its size in MB and
    where it is unpacked."""
    out, unpacked = scratch / "out", scratch / "shipped"
    subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "package", "--stage", "dev", str(out)],
        cwd=PROJECT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        check=True,
    )
    package = out / "deployment.zip"
    _, after = trim(package)
    with zipfile.ZipFile(package) as built:
        built.extractall(unpacked)
    return after / 1_000_000, unpacked
