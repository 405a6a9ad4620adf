"""The reliability suite's one summary table, printed after `make test` and `make soak`.

Each reliability test fills a Tally (tests/reliability/conftest.py); the
tally travels with the test's report (user_properties), so with pytest-xdist
the controller adds up what every worker measured.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

PROPERTY = "reliability"


def soak() -> bool:
    """`make soak` sets SHOPHOOK_SOAK=1: the long variants."""
    return os.environ.get("SHOPHOOK_SOAK") == "1"


def scaled(fast: int, long: int) -> int:
    return long if soak() else fast


def examples(fast: int, long: int) -> settings:
    """On top of the suite's profile (tests/conftest.py): these tests share one
    stack fixture across their examples on purpose, and try more under `make soak`."""
    return settings(
        max_examples=scaled(fast, long),
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@dataclass
class Tally:
    """What one test tried and what it saw go wrong."""

    area: str
    inputs: int = 0
    faults: int = 0
    duplicates: int = 0
    lost: int = 0
    duplicated_effects: int = 0
    server_errors: int = 0

    def as_property(self) -> tuple[str, dict[str, Any]]:
        return PROPERTY, asdict(self)


COLUMNS = (
    ("inputs", "inputs tried"),
    ("faults", "faults injected"),
    ("duplicates", "duplicates sent"),
    ("lost", "lost"),
    ("duplicated_effects", "duplicated effects"),
    ("server_errors", "5xx"),
)


class Summary:
    def __init__(self) -> None:
        self.areas: dict[str, Counter[str]] = {}
        self.load: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name == "load":
                self.load.append(value)
            if name == PROPERTY:
                counts = self.areas.setdefault(value["area"], Counter())
                counts["tests"] += 1
                counts.update({column: value[column] for column, _ in COLUMNS})

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.areas:
            return
        headers = ["area", "tests", *(title for _, title in COLUMNS)]
        total: Counter[str] = Counter()
        rows = []
        for area, counts in sorted(self.areas.items()):
            total.update(counts)
            rows.append([area, counts["tests"], *(counts[column] for column, _ in COLUMNS)])
        rows.append(["total", total["tests"], *(total[column] for column, _ in COLUMNS)])
        cells = [
            headers,
            *([f"{value:,}" if isinstance(value, int) else value for value in row] for row in rows),
        ]
        widths = [max(len(str(row[i])) for row in cells) for i in range(len(headers))]
        terminalreporter.section(f"reliability ({'soak' if soak() else 'fast'})")
        for number, row in enumerate(cells):
            if number in (1, len(cells) - 1):
                terminalreporter.write_line("  ".join("-" * width for width in widths))
            terminalreporter.write_line(
                "  ".join(
                    str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                    for i, (cell, width) in enumerate(zip(row, widths, strict=True))
                )
            )
        for run in self.load:
            terminalreporter.write_line(
                f"load: {run['webhooks']:,} webhooks from {run['threads']} threads in "
                f"{run['seconds']} s: {run['per_second']}/s, p50 {run['p50_ms']} ms, "
                f"p99 {run['p99_ms']} ms, {run['retried_503']} retried after a 503"
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Summary(), "reliability-summary")
