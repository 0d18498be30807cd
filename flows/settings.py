"""Configuration of a run: with `warehouse.home.Home.from_env`, the only reader of environment
variables (where the warehouse lives is read there, so that analysts' `warehouse.connect()`
finds it without importing the flows)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from transforms.minhash import THRESHOLD as NEAR_THRESHOLD
from warehouse.home import Home, s3_from_env
from warehouse.inbox.bundles import BundleLimits
from warehouse.storage import is_remote

# A site redesign that breaks the parser sends most of a night to quarantine; a normal night
# of mixed outlets (see the sample inbox) stays far below half.
DEFAULT_MAX_FAILURE_RATIO = 0.5
# Below this many dumps a night's ratio says little (one bad file of two is 50%), so the gate
# only applies from here on.
DEFAULT_MIN_DUMPS_FOR_RATIO = 20
# A file modified this recently may still be being written; it is looked at again after the
# window, and left for the next night if it changed meanwhile.
DEFAULT_SETTLE_SECONDS = 5.0
# Real dumps are tens of KB (the largest of the shared corpus, 122 KB); anything past this is
# not a page's text. The cap bounds what one dump, bundle member or .gz holds in memory.
DEFAULT_MAX_DUMP_BYTES = 4 * 1024 * 1024
# A bundle (.zip, .tar, .tar.gz) past these is refused whole before its members are inflated:
# a night's crawl is thousands of files of tens of KB, so 10,000 members and 512 MiB leave room.
DEFAULT_MAX_BUNDLE_MEMBERS = 10_000
DEFAULT_MAX_BUNDLE_BYTES = 512 * 1024 * 1024
# Text compresses 3-10 times; past 100:1 (over 1 MiB) the bytes are built to explode.
DEFAULT_MAX_COMPRESSION_RATIO = 100.0
# Files per batch at most (a task run, worked whole by one worker, validated at once): Prefect's
# cost per task run and Great Expectations' per validation (a tenth of a second) are paid per
# batch; a night is cut into at least as many batches as there are workers.
DEFAULT_BATCH_SIZE = 5000
# This machine's worker processes, each working whole batches: one per core.
DEFAULT_PARSE_PROCESSES = os.cpu_count() or 1
# A night with fewer bytes to read is worked in the flow's own process: a pool's worker pays its
# imports, Great Expectations' among them (about 3 s of CPU each), before its first batch, which
# only a night of a few thousand dumps earns back on two cores.
DEFAULT_POOL_MIN_BYTES = 16 * 1024 * 1024
# Time travel and rollback reach this far back; `wirehouse compact` expires older snapshots.
DEFAULT_SNAPSHOT_RETENTION_DAYS = 30
# A transient failure (the catalog restarting, a disk or network hiccup) is tried again this
# many times, after 2, 4, 8, 16 and 32 seconds: about a minute in all, longer than a PostgreSQL
# restart or a short failover takes. An outage that outlasts it fails the night, changing nothing.
DEFAULT_RETRIES = 5
DEFAULT_RETRY_SECONDS = 2.0
# The nightly schedule: after the crawler's evening drop has landed, before analysts start.
DEFAULT_SCHEDULE = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"
# A night of tens of thousands of dumps takes minutes; hours means a run is stuck (a hung
# mount, a lock that never comes back): fail it so the next night can start.
NIGHT_TIMEOUT_SECONDS = 3 * 3600


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """How far a night's figures may stray from the trailing nights before it is an anomaly."""

    # A month of nights: long enough that one bad week does not move the median, short enough
    # to follow the crawler's slow growth.
    baseline_nights: int = 28
    # Fewer nights than this make no baseline: a median of two nights is one of them.
    min_baseline_nights: int = 3
    # New files below this share of the baseline's (a third of the usual drop is one): the
    # crawler or the transfer broke. Nights vary by tens of percent, not by half.
    volume_drop: float = 0.5
    # New files above this multiple of the baseline's: a re-delivery, or a crawler gone wide.
    volume_spike: float = 2.0
    # The failure ratio rising by this much (absolute) over the baseline's, and past twice it:
    # the parser is breaking before the refusal threshold notices.
    failure_ratio_rise: float = 0.1
    # A layout's share of the articles rising by this much (absolute), or a layout not seen
    # in any baseline night: a redesign routed to `generic`, or a new outlet.
    layout_share_rise: float = 0.2
    # A source silent tonight that gave at least this many articles on a median night.
    source_min_articles: int = 5
    # The 95th percentile of publication lag past this multiple of the baseline's and this
    # many hours more: articles arriving days late.
    late_factor: float = 2.0
    late_hours: float = 24.0

    @classmethod
    def from_env(cls) -> HealthThresholds:
        """From WIREHOUSE_HEALTH_* environment variables, then the defaults."""
        env, d = os.environ, cls()
        return cls(
            baseline_nights=int(env.get("WIREHOUSE_HEALTH_BASELINE_NIGHTS", d.baseline_nights)),
            min_baseline_nights=int(
                env.get("WIREHOUSE_HEALTH_MIN_BASELINE_NIGHTS", d.min_baseline_nights)
            ),
            volume_drop=_float(env, "WIREHOUSE_HEALTH_VOLUME_DROP", d.volume_drop),
            volume_spike=_float(env, "WIREHOUSE_HEALTH_VOLUME_SPIKE", d.volume_spike),
            failure_ratio_rise=_float(
                env, "WIREHOUSE_HEALTH_FAILURE_RATIO_RISE", d.failure_ratio_rise
            ),
            layout_share_rise=_float(
                env, "WIREHOUSE_HEALTH_LAYOUT_SHARE_RISE", d.layout_share_rise
            ),
            source_min_articles=int(
                env.get("WIREHOUSE_HEALTH_SOURCE_MIN_ARTICLES", d.source_min_articles)
            ),
            late_factor=_float(env, "WIREHOUSE_HEALTH_LATE_FACTOR", d.late_factor),
            late_hours=_float(env, "WIREHOUSE_HEALTH_LATE_HOURS", d.late_hours),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a nightly run needs to know, resolved once at its start."""

    home: Home
    inbox: str  # an absolute folder, or an s3://bucket/prefix URL (no trailing slash)
    max_failure_ratio: float = DEFAULT_MAX_FAILURE_RATIO
    min_dumps_for_ratio: int = DEFAULT_MIN_DUMPS_FOR_RATIO
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    max_dump_bytes: int = DEFAULT_MAX_DUMP_BYTES
    max_bundle_members: int = DEFAULT_MAX_BUNDLE_MEMBERS
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES
    max_compression_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO
    batch_size: int = DEFAULT_BATCH_SIZE
    parse_processes: int = DEFAULT_PARSE_PROCESSES
    pool_min_bytes: int = DEFAULT_POOL_MIN_BYTES
    build_docs: bool = True
    near_threshold: float = NEAR_THRESHOLD
    snapshot_retention_days: float = DEFAULT_SNAPSHOT_RETENTION_DAYS
    # A Dask scheduler (`tcp://host:8786`) whose workers parse the batches; None: this machine.
    dask_scheduler: str | None = None
    retries: int = DEFAULT_RETRIES
    retry_seconds: float = DEFAULT_RETRY_SECONDS  # the first delay; each next one twice as long
    health: HealthThresholds = field(default_factory=HealthThresholds)

    @classmethod
    def from_env(
        cls,
        *,
        home: str | Path | None = None,
        inbox: str | Path | None = None,
        max_failure_ratio: float | None = None,
        dask_scheduler: str | None = None,
    ) -> Settings:
        """Settings from arguments, then WIREHOUSE_* environment variables, then defaults."""
        env = os.environ
        the_home = Home.from_env(home)
        the_inbox = inbox_location(str(inbox or env.get("WIREHOUSE_INBOX") or the_home.inbox))
        if is_remote(the_inbox) and the_home.s3 is None:
            the_home = replace(the_home, s3=s3_from_env())  # workers get them with the home
        settings = cls(
            home=the_home,
            inbox=the_inbox,
            max_failure_ratio=_float(env, "WIREHOUSE_MAX_FAILURE_RATIO", DEFAULT_MAX_FAILURE_RATIO),
            min_dumps_for_ratio=int(
                env.get("WIREHOUSE_MIN_DUMPS_FOR_RATIO", DEFAULT_MIN_DUMPS_FOR_RATIO)
            ),
            settle_seconds=_float(env, "WIREHOUSE_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS),
            max_dump_bytes=int(env.get("WIREHOUSE_MAX_DUMP_BYTES", DEFAULT_MAX_DUMP_BYTES)),
            max_bundle_members=int(
                env.get("WIREHOUSE_MAX_BUNDLE_MEMBERS", DEFAULT_MAX_BUNDLE_MEMBERS)
            ),
            max_bundle_bytes=int(env.get("WIREHOUSE_MAX_BUNDLE_BYTES", DEFAULT_MAX_BUNDLE_BYTES)),
            max_compression_ratio=_float(
                env, "WIREHOUSE_MAX_COMPRESSION_RATIO", DEFAULT_MAX_COMPRESSION_RATIO
            ),
            batch_size=int(env.get("WIREHOUSE_BATCH_SIZE", DEFAULT_BATCH_SIZE)),
            parse_processes=int(env.get("WIREHOUSE_PARSE_PROCESSES", DEFAULT_PARSE_PROCESSES)),
            pool_min_bytes=int(env.get("WIREHOUSE_POOL_MIN_BYTES", DEFAULT_POOL_MIN_BYTES)),
            build_docs=env.get("WIREHOUSE_BUILD_DOCS", "1") not in {"0", "false", "no"},
            near_threshold=_float(env, "WIREHOUSE_NEAR_THRESHOLD", NEAR_THRESHOLD),
            snapshot_retention_days=_float(
                env, "WIREHOUSE_SNAPSHOT_RETENTION_DAYS", DEFAULT_SNAPSHOT_RETENTION_DAYS
            ),
            dask_scheduler=dask_scheduler or env.get("WIREHOUSE_DASK_SCHEDULER") or None,
            retries=int(env.get("WIREHOUSE_RETRIES", DEFAULT_RETRIES)),
            retry_seconds=_float(env, "WIREHOUSE_RETRY_SECONDS", DEFAULT_RETRY_SECONDS),
            health=HealthThresholds.from_env(),
        )
        if max_failure_ratio is not None:
            settings = replace(settings, max_failure_ratio=max_failure_ratio)
        return settings

    @property
    def retry_delays(self) -> list[float]:
        """The waits before each new try after a transient failure, doubling."""
        return [self.retry_seconds * 2**i for i in range(self.retries)]

    @property
    def bundle_limits(self) -> BundleLimits:
        """What one bundle, member or .gz may hold before it is refused."""
        return BundleLimits(
            max_member_bytes=self.max_dump_bytes,
            max_members=self.max_bundle_members,
            max_total_bytes=self.max_bundle_bytes,
            max_ratio=self.max_compression_ratio,
        )


def inbox_location(inbox: str) -> str:
    """An inbox as settings keep it: an absolute folder, or a URL without its trailing slash."""
    if is_remote(inbox):
        return inbox.rstrip("/")
    return str(Path(inbox).expanduser().resolve())


@dataclass(frozen=True, slots=True)
class NightSchedule:
    """When the `nightly` deployment runs: a cron line in an IANA time zone."""

    cron: str = DEFAULT_SCHEDULE
    timezone: str = DEFAULT_TIMEZONE

    @classmethod
    def from_env(cls, *, cron: str | None = None, timezone: str | None = None) -> NightSchedule:
        """From arguments, then WIREHOUSE_SCHEDULE and WIREHOUSE_TIMEZONE, then the defaults."""
        env = os.environ
        return cls(
            cron=cron or env.get("WIREHOUSE_SCHEDULE") or DEFAULT_SCHEDULE,
            timezone=timezone or env.get("WIREHOUSE_TIMEZONE") or DEFAULT_TIMEZONE,
        )


def alert_url() -> str | None:
    """WIREHOUSE_ALERT_URL: where the on-call automation's webhook block posts (None: unset)."""
    return os.environ.get("WIREHOUSE_ALERT_URL") or None


def quiet_third_parties() -> None:
    """No analytics or phoning home: no machine running this reaches the internet."""
    for key, value in (
        ("DO_NOT_TRACK", "1"),
        ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
        ("GX_ANALYTICS_ENABLED", "False"),
        ("TQDM_DISABLE", "1"),
    ):
        os.environ.setdefault(key, value)


def _float(env: os._Environ[str], key: str, default: float) -> float:
    return float(env.get(key, default))
