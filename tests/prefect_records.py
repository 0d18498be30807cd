"""What the test Prefect server holds of recent runs, as text to search (for secrets)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

PAGE = 200


def prefect_records(since: datetime) -> dict[str, str]:
    """What the Prefect server holds of runs since then: flow runs (parameters, names, states),
    task runs, logs, artifacts, events, and the block documents as the API shows them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        FlowRunFilter,
        FlowRunFilterStartTime,
        LogFilter,
        LogFilterFlowRunId,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since))
        )
        ids = [run.id for run in runs]
        assert ids, "no flow run since the test started: nothing searched"
        flow_runs = json.dumps([run.model_dump(mode="json") for run in runs])
        task_runs = json.dumps(
            [
                run.model_dump(mode="json")
                for run in client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id={"any_": ids})  # type: ignore[arg-type]
                )
            ]
        )
        logs = _pages(
            lambda offset: client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                limit=PAGE,
                offset=offset,
            )
        )
        artifacts = _pages(
            lambda offset: client.read_artifacts(
                artifact_filter=ArtifactFilter(),
                flow_run_filter=FlowRunFilter(id={"any_": ids}),  # type: ignore[arg-type]
                limit=PAGE,
                offset=offset,
            )
        )
        blocks = json.dumps(
            [b.model_dump(mode="json") for b in client.read_block_documents(include_secrets=False)]
        )
        automations = json.dumps([a.model_dump(mode="json") for a in client.read_automations()])
        events = _events(client, since)
    return {
        "Prefect flow runs": flow_runs,
        "Prefect task runs": task_runs,
        "Prefect logs": "\n".join(log.message for log in logs),
        "Prefect artifacts": json.dumps([a.model_dump(mode="json") for a in artifacts]),
        "Prefect blocks": blocks,
        "Prefect automations": automations,
        "Prefect events": events,
    }


def _pages(read: Any) -> list[Any]:
    """Every record of a paged read."""
    found: list[Any] = []
    while page := read(len(found)):
        found += page
        if len(page) < PAGE:
            break
    return found


def _events(client: Any, since: datetime) -> str:
    """The events the server recorded since then, as JSON."""
    response = client._client.post(
        "/events/filter",
        json={"filter": {"occurred": {"since": since.isoformat()}}, "limit": 50},
    )
    pages = [response.json()]
    while pages[-1].get("next_page"):
        pages.append(client._client.get(pages[-1]["next_page"]).json())
    return json.dumps(pages)
