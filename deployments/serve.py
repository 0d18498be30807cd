"""The `nightly` deployment served from one process, no work pool: the embedded default."""

from __future__ import annotations

import logging
from typing import Any, cast

from prefect import get_client, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Schedule
from prefect.types.entrypoint import EntrypointType

from flows.settings import NightSchedule, Settings

log = logging.getLogger(__name__)

DEPLOYMENT_NAME = "nightly"
TAGS = ["wirehouse", "nightly"]
# Nights never overlap: a night that comes due while the last one still runs waits for it
# (ENQUEUE), rather than being dropped, so no drop of dumps is skipped. The home's file lock
# (warehouse/lock.py) backs this up for runs started outside the deployment.
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def nightly_schedule(schedule: NightSchedule) -> Schedule:
    """The deployment's cron schedule in its time zone."""
    return Cron(schedule.cron, timezone=schedule.timezone)


def nightly_parameters(settings: Settings) -> dict[str, Any]:
    """Default parameters of the scheduled runs: this home and inbox, as absolute paths, and
    the Dask scheduler if one is set."""
    parameters = {"home": str(settings.home.root), "inbox": str(settings.inbox)}
    if settings.dask_scheduler is not None:
        parameters["dask_scheduler"] = settings.dask_scheduler
    return parameters


def nightly_deployment(settings: Settings, schedule: NightSchedule) -> RunnerDeployment:
    """The `nightly` deployment of the ingest flow, as `wirehouse serve` registers it."""
    from flows.nightly import nightly_ingest

    deployment = nightly_ingest.to_deployment(
        name=DEPLOYMENT_NAME,
        schedules=[nightly_schedule(schedule)],
        concurrency_limit=ONE_AT_A_TIME,
        # Stopping `serve` pauses the deployment; starting it again must resume the nights.
        paused=False,
        parameters=nightly_parameters(settings),
        description="Ingest the dumps that arrived in the inbox since the last night.",
        tags=TAGS,
        # Each run starts as `python -m prefect.engine`, importing the flow by module from any
        # directory, rather than as a pickled copy of the flow function.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast(RunnerDeployment, deployment)  # the sync variant, called outside an event loop


def serve_nightly(settings: Settings, schedule: NightSchedule) -> None:
    """Create or update the `nightly` deployment and run its nights here until interrupted.

    Stopping pauses the deployment, so that no nights pile up while nobody serves them. Prefect's
    runner pauses on shutdown too, but the interrupt can cancel that call before it is sent (seen
    on a loaded machine), so it is done again here, once the runner has stopped.
    """
    deployment = nightly_deployment(settings, schedule)
    try:
        serve(deployment, limit=1)
    finally:
        _pause(f"{deployment.flow_name}/{deployment.name}")


def _pause(name: str) -> None:
    try:
        with get_client(sync_client=True) as client:
            client.pause_deployment(client.read_deployment_by_name(name).id)
    except Exception as error:  # the API may be gone too: say so, do not hide the interrupt
        log.warning("could not pause the deployment %s on the way out: %s", name, error)


if __name__ == "__main__":
    serve_nightly(Settings.from_env(), NightSchedule.from_env())
