"""Outages of the services a warehouse lives on, told apart from bugs and bad input: which
errors a second try can fix (`transient`), and the one message a user gets when one lasts."""

from __future__ import annotations

from collections.abc import Callable

from warehouse.home import Home


class ServiceUnavailable(RuntimeError):
    """A service the warehouse needs did not answer for long enough: `service` names it for a
    user (never with a password or key), the message says what to do."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service = service


def transient(error: BaseException) -> bool:
    """Whether `error` (or one it was raised from) is an outage a later try may not meet."""
    return any(detect(error) for detect in _DETECTORS)


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the errors it was raised from or during, nearest first."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


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


_DETECTORS: tuple[Callable[[BaseException], bool], ...] = (catalog_down,)
