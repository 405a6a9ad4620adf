"""`python -m bench [name ...]`: each benchmark in its own interpreter (a clean
moto and a cold import each), tables printed, results under bench/results/.
`python -m bench --markdown` prints the latest results for docs/benchmarks.md."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib import import_module
from time import perf_counter

BENCHMARKS = {
    "requests": ("bench.webhooks", "requests_and_cost"),
    "throughput": ("bench.webhooks", "throughput"),
    "cold-start": ("bench.coldstart", "cold_start"),
    "sweeper": ("bench.sweeper", "sweeper"),
    "fanout": ("bench.fanout", "fanout"),
    "console": ("bench.console", "console"),
    "reconcile": ("bench.reconcile", "reconcile_costs"),
    "channel": ("bench.channel", "channel_costs"),
}


def run_one(name: str) -> None:
    # moto's server logs every request; the tables are what matters here.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    module, function = BENCHMARKS[name]
    getattr(import_module(module), function)().show_and_save()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        run_one(argv[1])
        return 0
    if argv[:1] == ["--markdown"]:
        from bench.report import markdown

        print(markdown())
        return 0
    names = argv or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown}; choose from {', '.join(BENCHMARKS)}")
    started = perf_counter()
    failed = []
    for name in names:
        done = subprocess.run([sys.executable, "-m", "bench", "--one", name], check=False)
        if done.returncode:
            failed.append(name)
    print(f"\n{len(names)} benchmarks in {perf_counter() - started:.0f}s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
