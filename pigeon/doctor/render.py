"""A doctor's `Report` as JSON (stable: the same keys in the same order, for scripts and the API)
and as text for a terminal (Rich).

JSON shape::

    {"flow": "message", "subject": {...},
     "findings": [{"cause": "...", "severity": "error|warning|info", "summary": "...",
                   "evidence": [{"source": "...", ...}, ...], "advice": ["...", ...]}],
     "checks": [{"check": "...", "ok": true, ...}]}

Times are ISO 8601 in UTC with a Z.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape

from pigeon.domain.diagnosis import Finding, Report

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
#: Evidence fields shown in text; the rest is in --json.
_SKIP_IN_TEXT = frozenset({"source", "message_sid", "causes", "more_info", "detail"})


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "cause": f.cause,
        "severity": f.severity,
        "summary": f.summary,
        "evidence": jsonable(f.evidence),
        "advice": list(f.advice),
    }


def to_json(report: Report) -> dict[str, Any]:
    return {
        "flow": report.flow,
        "subject": jsonable(report.subject),
        "findings": [finding_json(f) for f in report.findings],
        "checks": jsonable(report.checks),
    }


def dumps(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"


def exit_code(report: Report) -> int:
    """0 when nothing is wrong (or only warnings and notes), 1 when a finding is an error."""
    return 1 if report.has_errors else 0


# -- text ----------------------------------------------------------------------------------------


def _subject_line(report: Report) -> str:
    parts = [f"{k}={jsonable(v)}" for k, v in report.subject.items() if v not in (None, [], "")]
    return f"pigeon doctor {report.flow}: " + ", ".join(parts)


def _evidence_line(row: Mapping[str, Any]) -> str:
    source = row.get("source", "")
    fields = [f"{k}={jsonable(v)}" for k, v in row.items() if k not in _SKIP_IN_TEXT and v not in (None, "", [], {})]
    detail = row.get("detail")
    if detail:
        fields.append(f"detail={json.dumps(jsonable(detail), ensure_ascii=False)}")
    return f"{source}: " + "  ".join(fields)


def _checks(console: Console, checks: Sequence[Mapping[str, Any]]) -> None:
    for c in checks:
        ok = c.get("ok")
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]" if ok is False else "·"
        rest = "  ".join(f"{k}={jsonable(v)}" for k, v in c.items() if k not in {"check", "ok"} and v is not None)
        console.print(f"  {mark} {escape(str(c.get('check')))}  {escape(rest)}", highlight=False, markup=True)


def render_text(report: Report, console: Console) -> None:
    console.print(escape(_subject_line(report)), style="bold", highlight=False, markup=True)
    if report.checks:
        _checks(console, report.checks)
    if not report.findings:
        console.print("[green]No problems found.[/green]", markup=True)
        return
    for f in report.findings:
        console.print()
        style = STYLE.get(f.severity, "")
        console.print(f"[{style}]{f.severity.upper()}[/{style}] [bold]{f.cause}[/bold]", highlight=False, markup=True)
        console.print(f"  {escape(f.summary)}", highlight=False, soft_wrap=False, markup=True)
        if f.evidence:
            console.print("  [dim]evidence[/dim]", markup=True)
            for row in f.evidence:
                console.print(f"    - {escape(_evidence_line(row))}", highlight=False, markup=True)
        if f.advice:
            console.print("  [dim]what to do[/dim]", markup=True)
            for line in f.advice:
                console.print(f"    • {escape(line)}", highlight=False, markup=True)
