"""Night-over-night health: tonight's figures against the trailing nights' median, anomalies,
and the Prefect events that operators' automations build on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from flows.settings import HealthThresholds
from warehouse.figures import NightFigures

KINDS = (
    "volume_drop",
    "volume_spike",
    "failure_ratio",
    "new_layout",
    "source_silent",
    "late_articles",
)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One figure of the night far from its baseline."""

    kind: str
    figure: str
    value: float
    baseline: float
    detail: str


@dataclass(slots=True)
class Health:
    """A night against its baseline: the figures side by side, and what is anomalous."""

    run_id: str
    status: str
    baseline_nights: int
    anomalies: list[Anomaly] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)  # figure, tonight, baseline

    @property
    def has_baseline(self) -> bool:
        """Whether enough earlier nights were there to compare with."""
        return bool(self.figures) and self.baseline_nights > 0

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for the night's report and its summary."""
        return asdict(self)


def night_health(
    tonight: NightFigures, baseline: list[NightFigures], limits: HealthThresholds
) -> Health:
    """Compare tonight with the median of the baseline nights; no baseline, no anomaly."""
    if len(baseline) < limits.min_baseline_nights:
        return Health(tonight.run_id, tonight.status, 0)
    health = Health(tonight.run_id, tonight.status, len(baseline))
    _volume(health, tonight, baseline, limits)
    _failures(health, tonight, baseline, limits)
    if tonight.loaded and tonight.articles:
        _layouts(health, tonight, baseline, limits)
        _sources(health, tonight, baseline, limits)
        _lag(health, tonight, baseline, limits)
    health.anomalies.sort(key=lambda a: KINDS.index(a.kind))
    return health


def _volume(h: Health, t: NightFigures, base: list[NightFigures], lim: HealthThresholds) -> None:
    usual = median(n.files_new for n in base)
    h.figures.append(_row("new files", t.files_new, usual))
    h.figures.append(_row("articles loaded", t.articles, median(n.articles for n in base)))
    if usual and t.files_new < usual * lim.volume_drop:
        h.anomalies.append(
            Anomaly(
                "volume_drop",
                "new files",
                t.files_new,
                usual,
                f"{t.files_new} new files against {usual:g} on a median night "
                f"({t.files_new / usual:.0%}; alert below {lim.volume_drop:.0%})",
            )
        )
    elif usual and t.files_new > usual * lim.volume_spike:
        h.anomalies.append(
            Anomaly(
                "volume_spike",
                "new files",
                t.files_new,
                usual,
                f"{t.files_new} new files against {usual:g} on a median night "
                f"({t.files_new / usual:.1f}x; alert above {lim.volume_spike:g}x)",
            )
        )


def _failures(h: Health, t: NightFigures, base: list[NightFigures], lim: HealthThresholds) -> None:
    usual = median(n.failure_ratio for n in base)
    h.figures.append(_row("failure ratio", t.failure_ratio, usual))
    shares = {
        reason: [n.quarantined_by_reason.get(reason, 0) / max(n.files_new, 1) for n in base]
        for reason in {r for n in (t, *base) for r in n.quarantined_by_reason}
    }
    rises = {
        reason: t.quarantined_by_reason.get(reason, 0) / max(t.files_new, 1) - median(values)
        for reason, values in shares.items()
    }
    for reason in sorted(shares):
        tonight = t.quarantined_by_reason.get(reason, 0) / max(t.files_new, 1)
        h.figures.append(_row(f"share quarantined: {reason}", tonight, median(shares[reason])))
    rise = t.failure_ratio - usual
    if rise >= lim.failure_ratio_rise and t.failure_ratio > 2 * usual:
        worst = max(rises, key=lambda r: rises[r]) if rises else None
        because = f", mostly `{worst}` (+{rises[worst]:.0%})" if worst else ""
        h.anomalies.append(
            Anomaly(
                "failure_ratio",
                "failure ratio",
                t.failure_ratio,
                usual,
                f"{t.failure_ratio:.0%} of new dumps quarantined against {usual:.0%} on a "
                f"median night{because}",
            )
        )


def _layouts(h: Health, t: NightFigures, base: list[NightFigures], lim: HealthThresholds) -> None:
    for layout in sorted({k for n in (t, *base) for k in n.layouts}):
        share = t.layouts.get(layout, 0) / t.articles
        usual = median(n.layouts.get(layout, 0) / max(n.articles, 1) for n in base)
        h.figures.append(_row(f"share of articles: {layout}", share, usual))
        unseen = not any(n.layouts.get(layout) for n in base)
        if share and (unseen or share - usual >= lim.layout_share_rise):
            what = "a layout not seen in the baseline nights" if unseen else "its share jumped"
            h.anomalies.append(
                Anomaly(
                    "new_layout",
                    f"share of articles: {layout}",
                    share,
                    usual,
                    f"`{layout}`: {share:.0%} of tonight's articles against {usual:.0%} ({what})",
                )
            )


def _sources(h: Health, t: NightFigures, base: list[NightFigures], lim: HealthThresholds) -> None:
    for source in sorted({k for n in base for k in n.sources}):
        usual = median(n.sources.get(source, 0) for n in base)
        tonight = t.sources.get(source, 0)
        h.figures.append(_row(f"articles from {source}", tonight, usual))
        if tonight == 0 and usual >= lim.source_min_articles:
            h.anomalies.append(
                Anomaly(
                    "source_silent",
                    f"articles from {source}",
                    0,
                    usual,
                    f"no article from `{source}` tonight against {usual:g} on a median night",
                )
            )


def _lag(h: Health, t: NightFigures, base: list[NightFigures], lim: HealthThresholds) -> None:
    for name, attr in (("median", "lag_median_hours"), ("95th percentile", "lag_p95_hours")):
        values = [v for n in base if (v := getattr(n, attr)) is not None]
        tonight = getattr(t, attr)
        if tonight is None or not values:
            continue
        usual = median(values)
        h.figures.append(_row(f"publication lag, {name} (hours)", tonight, usual))
        late = tonight > usual * lim.late_factor and tonight - usual >= lim.late_hours
        if attr == "lag_p95_hours" and late:
            h.anomalies.append(
                Anomaly(
                    "late_articles",
                    f"publication lag, {name} (hours)",
                    tonight,
                    usual,
                    f"95% of tonight's articles arrived within {tonight:,.0f} h of publication "
                    f"against {usual:,.0f} h on a median night",
                )
            )


def _row(figure: str, tonight: float, baseline: float) -> dict[str, Any]:
    return {"figure": figure, "tonight": _round(tonight), "baseline": _round(baseline)}


def _round(value: float) -> float:
    return round(float(value), 4)


def tonight_figures(summary: dict[str, Any], started_at: datetime) -> NightFigures:
    """Tonight's base figures from the night's summary (details come from the lake if loaded)."""
    counts = summary["counts"]
    return NightFigures(
        run_id=summary["run_id"],
        started_at=started_at,
        status=summary["status"],
        files_new=int(counts["files"]),
        articles=int(counts["articles"]),
        failure_ratio=float(summary.get("failure_ratio") or 0.0),
        quarantined_by_reason=dict(counts.get("quarantined_by_reason", {})),
        loaded=summary["status"] == "succeeded",
    )
