"""Statistics, tables and the results files."""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"
console = Console(width=160)


def summary(samples: list[float]) -> dict[str, float]:
    """median, p95, p99, min and max of `samples`."""
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []

    def percentile(p: int) -> float:
        return cuts[p - 1] if cuts else ordered[0]

    return {
        "median": statistics.median(ordered),
        "p95": percentile(95),
        "p99": percentile(99),
        "min": ordered[0],
        "max": ordered[-1],
    }


@dataclass
class Report:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append(list(row))

    def show_and_save(self) -> None:
        table = Table(title=self.title, title_justify="left")
        for column in self.columns:
            table.add_column(column, justify="right" if column != self.columns[0] else "left")
        for row in self.rows:
            table.add_row(*(_cell(value) for value in row))
        console.print(table)
        for note in self.notes:
            console.print(f"  {note}", highlight=False)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{self.name}.json").write_text(
            json.dumps(
                {
                    "title": self.title,
                    "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": f"{platform.machine()}, Python {platform.python_version()}",
                    "columns": self.columns,
                    "rows": self.rows,
                    "notes": self.notes,
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def markdown() -> str:
    """The latest results as Markdown tables (for docs/benchmarks.md)."""
    parts = []
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        parts.append(f"**{result['title']}** ({result['measured_at']}, {result['machine']})\n")
        parts.append("| " + " | ".join(result["columns"]) + " |")
        parts.append("|" + "---|" * len(result["columns"]))
        for row in result["rows"]:
            parts.append("| " + " | ".join(_cell(value) for value in row) + " |")
        parts.extend(["", *(f"- {note}" for note in result["notes"]), ""])
    return "\n".join(parts)
