"""Targets, verdicts, and the results files: `latest.json` (everything) and `latest.md` (tables)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

OPS = {">=": "≥", "<=": "≤", "<": "<", "==": "="}


@dataclass
class Target:
    scenario: str  # "1".."6"
    what: str  # e.g. "creates/s, PostgreSQL"
    op: str  # ">=", "<=", "<", "=="
    threshold: float
    unit: str  # "/s", "ms", "s", "×", ""
    measured: float | None
    ok: bool | None = None
    miss: str | None = None  # by how much, when missed
    note: str | None = None  # context (e.g. the reference's figure)

    def __post_init__(self) -> None:
        value = self.measured
        if value is None or (isinstance(value, float) and math.isnan(value)):
            self.ok, self.miss = False, "not measured"
            return
        self.ok = {
            ">=": value >= self.threshold,
            "<=": value <= self.threshold,
            "<": value < self.threshold,
            "==": value == self.threshold,
        }[self.op]
        if self.ok:
            return
        if self.op == ">=":
            short = (self.threshold - value) / self.threshold
            factor = f", needs {self.threshold / value:.1f}×" if value > 0 else ""
            self.miss = f"{short:.0%} short{factor}"
        elif self.op == "==":
            self.miss = f"{fmt(value)} instead of {fmt(self.threshold)}"
        elif self.threshold > 0:
            self.miss = f"{value / self.threshold:.1f}× the limit"
        else:
            self.miss = f"{fmt(value)} over"

    @property
    def target_text(self) -> str:
        return f"{OPS[self.op]} {fmt(self.threshold)}{unit_text(self.unit)}"

    @property
    def measured_text(self) -> str:
        return "—" if self.measured is None else f"{fmt(self.measured)}{unit_text(self.unit)}"


def unit_text(unit: str) -> str:
    return "" if not unit else unit if unit in ("/s", "×") else f" {unit}"


def fmt(value: float | int | None) -> str:
    """Numbers for people: thousands separated, 3 significant digits for small ones."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [fmt(c) if isinstance(c, int | float) or c is None else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets_table(targets: list[Target]) -> list[str]:
    rows = []
    for t in targets:
        verdict = "met" if t.ok else f"**missed**: {t.miss}"
        rows.append([t.scenario, t.what, t.target_text, t.measured_text, t.note or "", verdict])
    return table(["#", "what", "target", "measured", "context", "verdict"], rows)


def write(results: dict, markdown: str, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "latest.json", directory / "latest.md"
    json_path.write_text(json.dumps(results, indent=2, default=_plain) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def _plain(value):
    if isinstance(value, Target):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
