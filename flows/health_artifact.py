"""The `nightly-health` artifact: tonight against its baseline, anomalies first, and a chart."""

from __future__ import annotations

import base64
from typing import Any
from xml.sax.saxutils import escape

from warehouse.figures import NightFigures

HEALTH_KEY = "nightly-health"
# Bars of the chart, in SVG user units; small enough for the artifact's column.
_BAR, _GAP, _HEIGHT, _TOP = 22, 6, 90, 18
_COLOURS = {"succeeded": "#4f7fbf", "failed": "#c0392b", "rolled_back": "#999999"}
_TONIGHT = "#e8a33d"  # tonight stands out from the nights before it
_LABEL = "#8a8a8a"  # grey: readable on the UI's dark theme and on its light one


def health_markdown(health: dict[str, Any], nights: list[NightFigures]) -> str:
    """The night's health for people: anomalies, figures against the baseline, last nights."""
    anomalies = health["anomalies"]
    if anomalies:
        lines = [f"# Night {health['run_id']}: ABNORMAL, {len(anomalies)} anomalies", ""]
        lines += ["| anomaly | tonight | baseline | what |", "|---|---:|---:|---|"]
        lines += [
            f"| **{a['kind']}** | {_num(a['value'])} | {_num(a['baseline'])} "
            f"| {_cell(a['detail'])} |"
            for a in anomalies
        ]
        lines.append("")
    elif health["baseline_nights"]:
        lines = [f"# Night {health['run_id']}: normal", "", "No figure far from the baseline.", ""]
    else:
        lines = [
            f"# Night {health['run_id']}: no baseline yet",
            "",
            "Fewer than the required earlier succeeded nights to compare with: nothing is "
            "judged abnormal until there are.",
            "",
        ]
    if health["figures"]:
        lines += [
            f"## Tonight against the median of the last {health['baseline_nights']} "
            "succeeded nights",
            "",
            "| figure | tonight | baseline |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {_cell(f['figure'])} | {_num(f['tonight'])} | {_num(f['baseline'])} |"
            for f in health["figures"]
        ]
        lines.append("")
    if nights:
        lines += ["## Last nights", "", f"![new files per night]({chart_uri(nights)})", ""]
        lines += _night_table(nights)
    return "\n".join(lines)


def health_headline(health: dict[str, Any]) -> str:
    """One line for the artifact's card: abnormal or not, and why."""
    kinds = [a["kind"] for a in health["anomalies"]]
    if kinds:
        return f"ABNORMAL night {health['run_id']}: " + ", ".join(kinds)
    if health["baseline_nights"]:
        return f"Night {health['run_id']} normal against {health['baseline_nights']} nights"
    return f"Night {health['run_id']}: no baseline yet"


def chart_uri(nights: list[NightFigures]) -> str:
    """New files per night, oldest first, as an SVG data URI (tonight orange, refused red)."""
    ordered = list(reversed(nights))
    top = max((n.files_new for n in ordered), default=0) or 1
    width = len(ordered) * (_BAR + _GAP) + _GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_HEIGHT + _TOP + 4}" '
        f'font-family="sans-serif" font-size="9" fill="{_LABEL}">'
    ]
    for i, night in enumerate(ordered):
        height = round(_HEIGHT * night.files_new / top)
        x, y = _GAP + i * (_BAR + _GAP), _TOP + _HEIGHT - height
        colour = _TONIGHT if i == len(ordered) - 1 else _COLOURS.get(night.status, "#999999")
        label = escape(f"{night.run_id}: {night.files_new} new files, {night.status}")
        parts.append(
            f'<rect x="{x}" y="{y}" width="{_BAR}" height="{height}" fill="{colour}">'
            f"<title>{label}</title></rect>"
        )
        parts.append(
            f'<text x="{x + _BAR / 2}" y="{y - 3}" text-anchor="middle">{night.files_new}</text>'
        )
    parts.append("</svg>")
    encoded = base64.b64encode("".join(parts).encode()).decode()
    return f"data:image/svg+xml;base64,{encoded}"


def _night_table(nights: list[NightFigures]) -> list[str]:
    """The chart's nights as a table, newest first, with what the bars leave out."""
    lines = [
        "| night | status | new files | articles | failure ratio |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {n.run_id} | {n.status} | {n.files_new:,} | {n.articles:,} | {n.failure_ratio:.1%} |"
        for n in nights
    ]
    return [*lines, ""]


def _num(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.1f}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")
