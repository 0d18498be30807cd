"""The night-over-night comparison on its own: each kind of anomaly, and none without a baseline."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from flows.artifacts import summary_headline, summary_markdown
from flows.health import night_health
from flows.health_artifact import health_headline, health_markdown
from flows.settings import HealthThresholds
from warehouse.figures import NightFigures

LIMITS = HealthThresholds()


def _night(run_id: str = "n", **values: object) -> NightFigures:
    usual = NightFigures(
        run_id=run_id,
        started_at=datetime(2026, 12, 1, tzinfo=UTC),
        status="succeeded",
        files_new=1000,
        articles=900,
        failure_ratio=0.05,
        quarantined_by_reason={"not_an_article": 50},
        layouts={"xinhua-2019": 800, "generic": 100},
        sources={"Xinhua": 800, "AP": 60, "Reuters": 40},
        lag_median_hours=6.0,
        lag_p95_hours=30.0,
    )
    return replace(usual, **values)  # type: ignore[arg-type]


BASELINE = [_night(f"b{i}", files_new=950 + 20 * i) for i in range(5)]


def _kinds(tonight: NightFigures, baseline: list[NightFigures] = BASELINE) -> list[str]:
    return [a.kind for a in night_health(tonight, baseline, LIMITS).anomalies]


def test_an_ordinary_night_has_no_anomaly() -> None:
    assert _kinds(_night(files_new=1080, failure_ratio=0.07)) == []


def test_no_baseline_before_three_succeeded_nights() -> None:
    health = night_health(_night(files_new=1), BASELINE[:2], LIMITS)
    assert health.anomalies == [] and health.baseline_nights == 0


def test_volume_drop_and_spike() -> None:
    assert _kinds(_night(files_new=300)) == ["volume_drop"]
    assert _kinds(_night(files_new=2500)) == ["volume_spike"]


def test_failure_ratio_names_the_reason_that_rose() -> None:
    health = night_health(
        _night(failure_ratio=0.25, quarantined_by_reason={"not_an_article": 50, "binary": 200}),
        BASELINE,
        LIMITS,
    )
    [anomaly] = health.anomalies
    assert anomaly.kind == "failure_ratio" and "`binary`" in anomaly.detail
    assert (anomaly.value, anomaly.baseline) == (0.25, 0.05)


def test_a_layout_never_seen_or_whose_share_jumps() -> None:
    unseen = _night(layouts={"xinhua-2019": 790, "generic": 100, "xinhua-2024": 10})
    assert _kinds(unseen) == ["new_layout"]
    redesign = _night(layouts={"xinhua-2019": 300, "generic": 600})  # Xinhua pages -> generic
    assert _kinds(redesign) == ["new_layout"]


def test_a_source_that_is_silent() -> None:
    assert _kinds(_night(sources={"Xinhua": 860, "Reuters": 40})) == ["source_silent"]
    # A source that gives fewer than the minimum on a median night may be silent.
    small = [replace(n, sources={**n.sources, "Rare": 2}) for n in BASELINE]
    assert _kinds(_night(), small) == []


def test_late_articles() -> None:
    assert _kinds(_night(lag_p95_hours=24 * 5.0)) == ["late_articles"]
    assert _kinds(_night(lag_p95_hours=50.0)) == []  # more, but not a day more than twice


def test_a_refused_night_is_judged_on_volume_and_failures_only() -> None:
    refused = _night(status="failed", loaded=False, failure_ratio=0.8, layouts={}, sources={})
    assert _kinds(refused) == ["failure_ratio"]


def test_anomalies_come_in_a_stable_order() -> None:
    assert _kinds(_night(files_new=100, failure_ratio=0.5, sources={"Xinhua": 900})) == [
        "volume_drop",
        "failure_ratio",
        "source_silent",  # AP
        "source_silent",  # Reuters
    ]


def test_an_abnormal_night_says_so_first() -> None:
    health = night_health(_night("tonight", files_new=300), BASELINE, LIMITS).as_dict()
    markdown = health_markdown(health, [_night("tonight", files_new=300), *BASELINE])
    assert markdown.startswith("# Night tonight: ABNORMAL, 1 anomalies\n")
    assert markdown.index("**volume_drop**") < markdown.index("## Tonight against the median")
    assert "![new files per night](data:image/svg+xml;base64," in markdown
    assert health_headline(health) == "ABNORMAL night tonight: volume_drop"
    counts = {"articles": 1, "duplicates": 0, "quarantined": 0, "files": 300}
    counts |= {"duplicates_by_kind": {}, "quarantined_by_reason": {}}
    summary = {"run_id": "tonight", "status": "succeeded", "counts": counts, "health": health}
    assert summary_headline(summary).startswith("ABNORMAL (volume_drop): Run tonight succeeded")
    assert summary_markdown(summary).startswith("# Night tonight: succeeded, ABNORMAL")
