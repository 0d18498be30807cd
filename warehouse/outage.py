"""What a night depends on failing: which failures a retry can mend, and what to tell the user.

Each service has a detector: given an error, True (transient: a task's retry seconds later
may succeed), False (lasting: retrying only repeats it) or None (not this service's error);
`verdict` asks them in turn (an error none of them knows is the caller's to judge).
`unavailable(error, home, places)` is the error as a `ServiceUnavailable` naming the service
and what to do, when a service the run needs is down, full or refusing (asked of each
service's check in `_OUTAGES`), or None.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.home import Home, S3Access


class ServiceUnavailable(RuntimeError):
    """A service the run needs is down, full or refusing: `service` names it for people (never
    with credentials), the message says what to do."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service = service


def verdict(error: BaseException) -> bool | None:
    """True when the error is a service's passing trouble (a retry seconds later may succeed),
    False when it is a service's lasting fault (a full disk: a retry only repeats it), None
    when it is no service's: the first detector that knows the error decides."""
    for detector in _DETECTORS:
        found = detector(error)
        if found is not None:
            return found
    return None


def transient(error: BaseException) -> bool:
    """Whether the error is a service's passing trouble, worth another try."""
    return verdict(error) is True


def unavailable(
    error: BaseException, home: Home, places: Iterable[str] = (), doing: str = "the night"
) -> ServiceUnavailable | None:
    """The failure as an outage of a service the run (`doing`: "the night", "the rollback")
    needs (the home's, and the other `places` it reads, such as an inbox), or None when no such
    service is down."""
    if isinstance(error, ServiceUnavailable):
        return error
    if not isinstance(error, Exception):  # an interrupt, an exit: not for us to explain
        return None
    for check in _OUTAGES:
        if (outage := check(error, home, places, doing)) is not None:
            return outage
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and the errors it was raised from or while handling (unless it was raised
    `from None`, as a traceback shows them), once each."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        handled = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or handled


# --- the disk ------------------------------------------------------------------------------

# What each errno means for the disk, and the words it takes in errors that carry no errno
# (DuckDB's and SQLite's messages, Arrow's).
_DISK_ERRNOS = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only"}
_DISK_WORDS = {
    "no space left on device": errno.ENOSPC,
    "database or disk is full": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "readonly database": errno.EROFS,
}


# SQLite's words for a failure that may be the disk's or not (a missing folder, a lost device):
# the disk's when one of the night's folders is on a read-only or full disk right then.
_MAYBE_DISK_WORDS = ("unable to open database file", "disk i/o error")
# Free bytes under which a disk counts as full for such an error.
_NEARLY_FULL = 1024 * 1024


def disk_errno(error: BaseException) -> int | None:
    """ENOSPC, EDQUOT or EROFS when the error (or one it came from) is a full, over-quota or
    read-only disk; None otherwise. A `ServiceUnavailable` already said so: None."""
    for link in _chain(error):
        if isinstance(link, ServiceUnavailable):
            return None
        if isinstance(link, OSError) and link.errno in _DISK_ERRNOS:
            return link.errno
        text = str(link).lower()
        for words, number in _DISK_WORDS.items():
            if words in text:
                return number
    return None


def is_maybe_disk(error: BaseException) -> bool:
    """Whether the error is a disk's, or one of SQLite's that a bad disk also gives."""
    if isinstance(error, ServiceUnavailable):
        return False  # already said
    if disk_errno(error) is not None:
        return True
    return any(w in str(link).lower() for link in _chain(error) for w in _MAYBE_DISK_WORDS)


def _disk(error: BaseException) -> bool | None:
    """A full or read-only disk stays so until someone frees space or remounts it: a retry of
    the task seconds later only fails again (and on a full disk, fills what the first try
    freed). Not transient."""
    return False if disk_errno(error) is not None else None


def disk_places(home: Home) -> list[tuple[str, Path]]:
    """The folders on this machine a night writes to, named for the user, the home first."""
    places = [("the home", home.root)]
    if home.data_is_local:
        places.append(("the data path", Path(home.data_url)))
    for name, location in (("the archive", home.archive), ("the staging folder", home.staging)):
        if "://" not in location:
            places.append((name, Path(location)))
    if home.catalog_spec.startswith("sqlite:"):
        places.append(("the catalog's folder", Path(home.catalog_spec[7:]).parent))
    return places


def disk_unavailable(
    error: BaseException, home: Home, committed: bool = False
) -> ServiceUnavailable | None:
    """The error as the user should read it when it is a disk's (full, over quota, read-only):
    which folder, and what to do, and whether the night had committed before; None for any
    other error."""
    places = disk_places(home)
    number = disk_errno(error)
    if number is None and is_maybe_disk(error):
        number = _probed(places)
    if number is None:
        return None
    name, where = _failed_place(error, number, places)
    state = _DISK_ERRNOS[number]
    if number == errno.EROFS:
        todo = (
            "make it writable again (remount it read-write; a disk that turned read-only by "
            "itself had errors: check it first)"
        )
    elif number == errno.EDQUOT:
        todo = f"free space under {where} or raise the quota"
    else:
        todo = f"free space under {where}"
    return ServiceUnavailable(
        f"the disk under {where}",
        f"the disk under {where} ({name}) is {state}: {todo}, then run again; "
        + _outcome(committed),
    )


def _probed(places: list[tuple[str, Path]]) -> int | None:
    """EROFS when one of the places is on a read-only disk, ENOSPC when one is on a (nearly)
    full one, None otherwise."""
    states = {_disk_state(path) for _, path in places} - {None}
    return next((n for n in (errno.EROFS, errno.EDQUOT, errno.ENOSPC) if n in states), None)


def _disk_state(path: Path) -> int | None:
    """EROFS, EDQUOT or ENOSPC when the disk holding `path` is read-only, over quota or (nearly)
    full right now, else None. A file is made and removed to tell: a disk that turned
    read-only after errors (ext4's emergency read-only) still says read-write in its flags."""
    found = _existing(path)
    if found is None or not found.is_dir():
        return None
    stat = os.statvfs(found)
    if stat.f_flag & os.ST_RDONLY:
        return errno.EROFS
    try:
        handle, name = tempfile.mkstemp(prefix=".wirehouse-probe-", dir=found)
    except OSError as error:
        return error.errno if error.errno in _DISK_ERRNOS else None
    os.close(handle)
    os.unlink(name)
    return errno.ENOSPC if stat.f_bavail * stat.f_frsize < _NEARLY_FULL else None


def _outcome(committed: bool) -> str:
    """What became of the night, for the end of the message."""
    if not committed:
        return "nothing was committed."
    return (
        "the night itself was committed before that; only what follows the commit "
        "(compaction, report) was not done."
    )


def _failed_place(
    error: BaseException, number: int, places: list[tuple[str, Path]]
) -> tuple[str, Path]:
    """The place the error is about, widened to the first place on the same disk (the home,
    when the folder is inside it): the place holding the file the error names, else the one
    whose disk is read-only (EROFS) or has the least space left, else the home."""
    found = _named_place(error, places)
    disks = [(name, path, os.statvfs(at)) for name, path in places if (at := _existing(path))]
    if found is None and number == errno.EROFS:
        found = next(((n, p) for n, p in places if _disk_state(p) == errno.EROFS), None)
    elif found is None and disks:
        least = min(s.f_bavail * s.f_frsize for _, _, s in disks)
        found = next((n, p) for n, p, s in disks if s.f_bavail * s.f_frsize == least)
    if found is None:
        return places[0]
    device = _device(found[1])
    return next((place for place in places if _device(place[1]) == device), found)


def _named_place(error: BaseException, places: list[tuple[str, Path]]) -> tuple[str, Path] | None:
    """The innermost place holding the file that the error (or one it came from) names."""
    for link in _chain(error):
        filename = getattr(link, "filename", None)
        if isinstance(filename, str | Path) and filename:
            holding = [p for p in places if _is_under(Path(filename), p[1])]
            if holding:
                return max(holding, key=lambda p: len(p[1].parts))
    return None


def _device(path: Path) -> int | None:
    """The device (disk) holding a path, or its nearest existing folder."""
    found = _existing(path)
    return os.stat(found).st_dev if found is not None else None


def _is_under(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or inside it."""
    return path == folder or folder in path.parents


def _existing(path: Path) -> Path | None:
    """The path, or its nearest folder that exists (on the same disk as the path would be)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


# --- the catalog (PostgreSQL) ---------------------------------------------------------------

# SQLSTATEs of a server that is gone or not yet back: class 08 (connection exception), an
# administrator's or a crash's shutdown, a server still starting, too many connections.
_CATALOG_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# What DuckDB's postgres extension says when libpq lost its server (it passes libpq's own
# words on), lower-cased. DuckDB raises these as IOException, InvalidInputException or a plain
# Error depending on where the connection broke, so the words are what tells them apart.
_CATALOG_SIGNS = (
    "unable to connect to postgres",
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "terminating connection due to unexpected postmaster exit",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    'failed to execute query "rollback"',  # a commit whose connection was gone
)


def catalog_down(error: BaseException) -> bool:
    """Whether `error` says the PostgreSQL catalog could not be reached or went away."""
    for link in _chain(error):
        if isinstance(link, ServiceUnavailable) and link.service.startswith("the catalog"):
            return True
        if _is_psycopg_outage(link):
            return True
        if type(link).__module__.startswith(("duckdb", "_duckdb")):
            text = str(link).lower()
            if any(sign in text for sign in _CATALOG_SIGNS):
                return True
    return False


# What DuckDB says of a query whose catalog connection broke under it (PostgreSQL restarted
# while the query read the catalog): not the words of a lost connection but of what the loss
# left behind, seen by the readers of the soak (`bench.soak`).
_BROKEN_OFF = (
    "current transaction is aborted",
    "attempting to fetch from an unsuccessful query result",
)


def catalog_broke_off(error: BaseException, home: Home) -> bool:
    """Whether a query on a PostgreSQL catalog failed with the words a restart of the catalog
    under it leaves (or because the catalog is down)."""
    if catalog_down(error):
        return True
    if not home.catalog_spec.startswith("postgres:"):
        return False
    return any(sign in str(link).lower() for link in _chain(error) for sign in _BROKEN_OFF)


def _is_psycopg_outage(error: BaseException) -> bool:
    """A psycopg error of a lost or refused connection (the run lock's own connection)."""
    import psycopg

    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    # No SQLSTATE: libpq failed before any server answered (refused, reset, closed).
    return state is None or state.startswith(_CATALOG_SQLSTATES)


def catalog_name(home: Home) -> str:
    """The catalog as a user knows it, host and port only (never the password)."""
    spec = home.catalog_spec
    if not spec.startswith("postgres:"):
        return f"the catalog ({spec})"
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(spec.removeprefix("postgres:"))
    except Exception:  # a string libpq cannot read: name nothing of it
        return "the catalog (PostgreSQL)"
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    return f"the catalog (PostgreSQL at {host}:{port})"


def catalog_unavailable(
    home: Home, doing: str, outcome: str = "nothing was changed"
) -> ServiceUnavailable:
    """The error for a catalog that stayed down while `doing` (a reader's query, a night);
    `outcome`: what that left in the warehouse."""
    service = catalog_name(home)
    return ServiceUnavailable(
        service,
        f"{service} is unavailable, {doing} stopped: {outcome}. Start it or check it "
        "(the server, the network, its address in WIREHOUSE_CATALOG), then run again.",
    )


# --- object storage (S3) ------------------------------------------------------------------

# What S3 (and S3-compatible servers) answer when they are busy or briefly failing.
_S3_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "500",
        "502",
        "503",
        "504",
    }
)
# botocore's errors without an answer that a later try may not meet (bad keys, a bad
# parameter are not among them).
_BOTOCORE_NO_ANSWER = frozenset({"HTTPClientError", "ConnectionError", "IncompleteReadError"})
# DuckDB's httpfs: "HTTP Error: Request returned HTTP 503 for HTTP HEAD to 'http://...'",
# "IO Error: Could not connect to server error for HTTP GET to '...'" (connection refused,
# reset, timed out).
_DUCKDB_HTTP = re.compile(r"returned HTTP 5\d\d for HTTP|error for HTTP [A-Z]+ to '")
# s3fs turns S3's SlowDown/503 into EBUSY and its InternalError/500 into EREMOTEIO.
_S3FS_ERRNOS = frozenset({errno.EBUSY, getattr(errno, "EREMOTEIO", 121)})


def s3_transient(error: BaseException) -> bool:
    """Whether a failure is object storage's passing trouble: throttled, a 5xx answer, a
    connection refused, reset or timed out (through botocore, s3fs or DuckDB's httpfs)."""
    return any(_s3_trouble(e) for e in _chain(error))


def _s3_trouble(error: BaseException) -> bool:
    """`s3_transient` of one error, its causes aside."""
    module = type(error).__module__
    kinds = {kind.__name__ for kind in type(error).__mro__}
    if module.startswith(("botocore", "aiobotocore")):
        response = getattr(error, "response", None)
        if not isinstance(response, dict):  # no answer: refused, reset, timed out, cut short
            return bool(kinds & _BOTOCORE_NO_ANSWER)
        code = str(response.get("Error", {}).get("Code", ""))
        status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        return code in _S3_TRANSIENT_CODES or status.startswith("5")
    if module.startswith("aiohttp"):  # s3fs's transport: a connection lost, a body cut short
        return bool(kinds & {"ClientConnectionError", "ClientPayloadError"})
    if module.startswith(("duckdb", "_duckdb")):
        return bool(_DUCKDB_HTTP.search(str(error)))
    if isinstance(error, OSError) and error.errno in _S3FS_ERRNOS:
        return isinstance(error.__cause__, Exception) and _s3_trouble(error.__cause__)
    return False


def s3_service(s3: S3Access) -> str:
    """Object storage named for people: its endpoint (host:port), never its keys."""
    if s3.endpoint:
        return f"object storage (S3 at {s3.endpoint})"
    return f"object storage (S3, region {s3.region})"


def s3_outage(
    error: Exception, home: Home, places: Iterable[str], doing: str = "the night"
) -> ServiceUnavailable | None:
    """An outage of the run's object storage: the failure came from it (or looks like it)
    and the storage does not answer a plain request now."""
    s3 = home.s3
    if s3 is None:
        return None
    buckets = _buckets([home.data_url, home.archive, home.staging, *places])
    if not buckets:
        return None
    # S3's own errors, and those that may hide one: I/O (s3fs's, or one sent back by a worker
    # without its cause) and DuckDB's
    maybe = isinstance(error, (OSError, TimeoutError)) or type(error).__module__.startswith(
        ("duckdb", "_duckdb")
    )
    if not maybe and not s3_transient(error):
        return None
    return s3_outage_now(s3, buckets[0], doing)


def s3_outage_now(s3: S3Access, bucket: str, doing: str = "the night") -> ServiceUnavailable | None:
    """`ServiceUnavailable` naming object storage when it does not answer a request about
    the bucket now; None when it answers."""
    cause = s3_unreachable(s3, bucket)
    if cause is None:
        return None
    service = s3_service(s3)
    return ServiceUnavailable(
        service,
        f"{service} is unavailable ({cause}); {doing} changed nothing. Check that the "
        "service is up and reachable from this machine (and from the workers), then run "
        "again: it starts from the warehouse as it was.",
    )


def _buckets(places: Iterable[str]) -> list[str]:
    """The buckets of the `s3://` places, in order, once each."""
    found: list[str] = []
    for place in places:
        if place.startswith("s3://"):
            bucket = place.removeprefix("s3://").split("/", 1)[0]
            if bucket and bucket not in found:
                found.append(bucket)
    return found


def s3_unreachable(s3: S3Access, bucket: str) -> str | None:
    """Why object storage does not answer a quick request about a bucket now (tried 4 times
    in a few seconds: a passing error is no outage), in a few words; None when it answers
    (even "no such bucket")."""
    import botocore.session  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    session = botocore.session.get_session()
    config = Config(
        connect_timeout=5,
        read_timeout=5,
        retries={"mode": "standard", "total_max_attempts": 4},
        s3={"addressing_style": "path"},
    )
    endpoint = f"{'https' if s3.use_ssl else 'http'}://{s3.endpoint}" if s3.endpoint else None
    client = session.create_client(
        "s3",
        region_name=s3.region,
        endpoint_url=endpoint,
        aws_access_key_id=s3.key_id or None,
        aws_secret_access_key=s3.secret or None,
        config=config,
    )
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as error:
        if not s3_transient(error):
            return None  # it answered: missing bucket, refused keys... not an outage
        response = getattr(error, "response", None)
        if response is None:
            return "no connection"
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        return f"it answers HTTP {status}"
    finally:
        client.close()
    return None


def _catalog(error: BaseException) -> bool | None:
    """A catalog that went away or does not answer yet is transient."""
    return True if catalog_down(error) else None


def _catalog_outage(
    error: Exception, home: Home, places: Iterable[str], doing: str
) -> ServiceUnavailable | None:
    """A catalog still down after every retry: one sentence naming it (host:port)."""
    return catalog_unavailable(home, doing) if catalog_down(error) else None


def _s3(error: BaseException) -> bool | None:
    """Object storage's passing trouble is transient; other errors are not its to judge."""
    return True if s3_transient(error) else None


def _disk_outage(
    error: Exception, home: Home, places: Iterable[str], doing: str
) -> ServiceUnavailable | None:
    """`disk_unavailable` as one of `_OUTAGES`."""
    return disk_unavailable(error, home)


_DETECTORS: tuple[Callable[[BaseException], bool | None], ...] = (_disk, _catalog, _s3)
_OUTAGES: tuple[Callable[[Exception, Home, Iterable[str], str], ServiceUnavailable | None], ...] = (
    _disk_outage,
    _catalog_outage,
    s3_outage,
)
