"""Which failures are a service's outage rather than a defect, and how to tell the user.

`transient(error)`: whether trying again may succeed (a service's passing trouble), from one
detector per service in `_DETECTORS`. `unavailable(error, home, places)`: the error as a
`ServiceUnavailable` naming the service and what to do, when a service the run needs is down
(asked of each service's check in `_OUTAGES`), or None.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.home import Home, S3Access


class ServiceUnavailable(RuntimeError):
    """A service the run needs did not answer; nothing was changed. The message says what to
    do; `service` names the service for people (never with credentials)."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service = service


def transient(error: BaseException) -> bool:
    """Whether a failure is a service's passing trouble, worth another try."""
    return any(detect(error) for detect in _DETECTORS)


def unavailable(
    error: BaseException, home: Home, places: Iterable[str] = ()
) -> ServiceUnavailable | None:
    """The failure as an outage of a service the run needs (the home's, and the other
    `places` it reads, such as an inbox), or None when no such service is down."""
    if isinstance(error, ServiceUnavailable):
        return error
    if not isinstance(error, Exception):  # an interrupt, an exit: not for us to explain
        return None
    for check in _OUTAGES:
        if (outage := check(error, home, places)) is not None:
            return outage
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and the errors it was raised from or while handling, once each."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


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


def s3_outage(error: Exception, home: Home, places: Iterable[str]) -> ServiceUnavailable | None:
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
    return s3_outage_now(s3, buckets[0])


def s3_outage_now(s3: S3Access, bucket: str) -> ServiceUnavailable | None:
    """`ServiceUnavailable` naming object storage when it does not answer a request about
    the bucket now; None when it answers."""
    cause = s3_unreachable(s3, bucket)
    if cause is None:
        return None
    service = s3_service(s3)
    return ServiceUnavailable(
        service,
        f"{service} is unavailable ({cause}); the night changed nothing. Check that the "
        "service is up and reachable from this machine (and from the workers), then run the "
        "night again: it starts from the warehouse as it was.",
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


_DETECTORS: tuple[Callable[[BaseException], bool], ...] = (s3_transient,)
_OUTAGES: tuple[Callable[[Exception, Home, Iterable[str]], ServiceUnavailable | None], ...] = (
    s3_outage,
)
