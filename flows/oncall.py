"""What the person on call sees of a night: its health (an artifact, a part of the summary)
and the Prefect events that automations turn into alerts."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from flows.health import night_health, tonight_figures
from flows.health_artifact import HEALTH_KEY, health_headline, health_markdown
from flows.operations import flow_run_id
from flows.settings import Settings
from warehouse.catalog import cursor
from warehouse.figures import baseline_nights, recent_nights, with_details
from warehouse.home import errors_masked

# Nights drawn in the artifact's chart.
CHART_NIGHTS = 14
COMPLETED, FAILED, ANOMALY = (
    "wirehouse.night.completed",
    "wirehouse.night.failed",
    "wirehouse.night.anomaly",
)
_COUNTS = ("files", "articles", "duplicates", "quarantined", "already_recorded", "undated")


@task(name="health", task_run_name="health", cache_policy=NONE)
@errors_masked
def check_health(
    summary: dict[str, Any], settings: Settings, lake: duckdb.DuckDBPyConnection
) -> dict[str, Any]:
    """Tonight against the trailing nights; publishes the `nightly-health` artifact."""
    started = datetime.fromisoformat(summary["started_at"])
    limits = settings.health
    with cursor(lake) as con:
        tonight = with_details(con, [tonight_figures(summary, started)])[0]
        baseline = baseline_nights(con, started, limits.baseline_nights)
        nights = recent_nights(con, started, CHART_NIGHTS)
    health = night_health(tonight, baseline, limits).as_dict()
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        markdown=health_markdown(health, nights),
        key=HEALTH_KEY,
        description=health_headline(health),
    )
    for anomaly in health["anomalies"]:
        get_run_logger().warning("anomaly %s: %s", anomaly["kind"], anomaly["detail"])
    return health


def announce_night(summary: dict[str, Any] | None, error: BaseException | None = None) -> None:
    """Emit the night's events: one per anomaly, then completed or failed with its counts."""
    from prefect.events import emit_event

    run_id = summary["run_id"] if summary else None
    resource = _night_resource(run_id)
    related = _flow_run_related()
    health = (summary or {}).get("health") or {"anomalies": []}
    for anomaly in health["anomalies"]:
        emit_event(
            event=ANOMALY,
            resource=resource,
            related=related,
            payload={"run_id": run_id, **anomaly},
        )
    failed = error is not None or summary is None or summary["status"] != "succeeded"
    payload: dict[str, Any] = {"run_id": run_id, "status": "failed" if failed else "succeeded"}
    if summary is not None:
        counts = summary["counts"]
        payload |= {name: counts.get(name, 0) for name in _COUNTS}
        payload |= {
            "failure_ratio": summary.get("failure_ratio"),
            "anomalies": [a["kind"] for a in health["anomalies"]],
            "message": summary.get("message"),
        }
    if error is not None:
        payload["error"] = str(error) or type(error).__name__
    emit_event(
        event=FAILED if failed else COMPLETED, resource=resource, related=related, payload=payload
    )


def _night_resource(run_id: str | None) -> dict[str, str]:
    resource = {"prefect.resource.id": f"wirehouse.night.{run_id or 'unknown'}"}
    if run_id:
        resource["prefect.resource.name"] = f"night {run_id}"
    return resource


def _flow_run_related() -> list[dict[str, str]]:
    """The flow run the night ran as (Prefect adds it from the context too; named here)."""
    run = flow_run_id()
    if run is None:
        return []
    return [{"prefect.resource.id": f"prefect.flow-run.{run}", "prefect.resource.role": "flow-run"}]


def night_anomalies(reports: Path, run_ids: list[str]) -> dict[str, str]:
    """The anomalies each night's report recorded, as one line per run ('' when none)."""
    out = {}
    for run_id in run_ids:
        path = reports / f"{run_id}.json"
        try:
            health = json.loads(path.read_text()).get("health") or {}
        except (OSError, ValueError):
            continue
        out[run_id] = ", ".join(a["kind"] for a in health.get("anomalies", []))
    return out
