"""The warehouse home: where inbox, archive, Data Docs live, and where the DuckLake catalog is."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

DEFAULT_HOME = "./data"
P = ParamSpec("P")
R = TypeVar("R")

# The contract's tables, in the order a night writes them.
TABLES = ("articles", "duplicates", "quarantine", "files", "runs")


class NoWarehouse(LookupError):
    """There is no catalog at the configured place yet."""


@dataclass(frozen=True, slots=True)
class S3Access:
    """How DuckDB reaches an S3-compatible data path (the standard AWS_* settings).

    Its keys never leave the machine: sent to a worker (a process of the pool, a Dask worker
    elsewhere), it arrives with the region and endpoint only, and the worker takes the keys
    from its own environment (AWS_*, or botocore's own lookup when those are unset)."""

    key_id: str = field(repr=False)
    secret: str = field(repr=False)
    region: str = "us-east-1"
    endpoint: str | None = None  # host:port of an S3-compatible server; None for AWS itself
    use_ssl: bool = True

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_keys_from_here, (self.region, self.endpoint, self.use_ssl))


@dataclass(frozen=True, slots=True)
class Home:
    """Paths under one WIREHOUSE_HOME folder, and the catalog and data path of its DuckLake.

    `catalog` is `sqlite:<path>` (the embedded default, beside the home's other folders) or
    `postgres:<libpq connection string>`; `data_path` a folder or an `s3://bucket/prefix/` URL.
    Nothing is created until `ensure` is called.
    """

    root: Path
    catalog: str = ""
    data_path: str = ""
    s3: S3Access | None = None
    archive_path: str = ""
    staging_path: str = ""

    def __repr__(self) -> str:
        """The home as logs may show it: the catalog's password masked, the S3 keys left out."""
        return (
            f"Home(root={str(self.root)!r}, catalog={self.catalog_shown!r}, "
            f"data_path={self.data_url!r}, archive={self.archive!r}, staging={self.staging!r})"
        )

    @property
    def catalog_shown(self) -> str:
        """The catalog as messages name it: `catalog_spec` with its password masked."""
        return masked(self.catalog_spec)

    @property
    def catalog_spec(self) -> str:
        """The DuckLake catalog: `sqlite:<path>` or `postgres:<connection string>`."""
        return self.catalog or f"sqlite:{self.root / 'catalog.sqlite'}"

    @property
    def data_url(self) -> str:
        """Where DuckLake writes Parquet data files, ending with a slash."""
        url = self.data_path or str(self.root / "lake")
        return url if url.endswith("/") else url + "/"

    @property
    def data_is_local(self) -> bool:
        """Whether the data files are on this machine's disk (not on object storage)."""
        return "://" not in self.data_url

    @property
    def inbox(self) -> Path:
        """Where the night's dumps arrive (by default)."""
        return self.root / "inbox"

    @property
    def lake(self) -> Path:
        """The default data path; also where the lake of the pre-DuckLake layout lived."""
        return self.root / "lake"

    @property
    def archive(self) -> str:
        """Raw dump bytes, content-addressed by SHA-256: a folder or an `s3://bucket/prefix`."""
        return (self.archive_path or str(self.root / "archive")).rstrip("/")

    @property
    def gx(self) -> Path:
        """Great Expectations' file context and its Data Docs."""
        return self.root / "gx"

    @property
    def reports(self) -> Path:
        """One JSON summary per run, for people and benchmarks."""
        return self.root / "reports"

    @property
    def staging(self) -> str:
        """Intermediate files of the run in progress, removed when it commits or fails: a folder
        or an `s3://bucket/prefix` (on a cluster, parse workers write there)."""
        return (self.staging_path or str(self.root / "staging")).rstrip("/")

    @property
    def lock(self) -> Path:
        """Held by the one run allowed at a time."""
        return self.root / ".wirehouse.lock"

    def ensure(self) -> Home:
        """Create the folders a run writes to; returns self."""
        self.reports.mkdir(parents=True, exist_ok=True)
        if "://" not in self.archive:
            Path(self.archive, "packs").mkdir(parents=True, exist_ok=True)
        if self.data_is_local:
            Path(self.data_url).mkdir(parents=True, exist_ok=True)
        return self

    @classmethod
    def at(
        cls,
        root: str | Path,
        catalog: str = "",
        data_path: str = "",
        s3: S3Access | None = None,
        archive_path: str = "",
        staging_path: str = "",
    ) -> Home:
        """A home at an absolute version of the given path."""
        root = Path(root).expanduser().resolve()
        return cls(root, catalog, data_path, s3, archive_path, staging_path)

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> Home:
        """The home, its catalog and data path: the argument, then WIREHOUSE_*, then defaults.

        WIREHOUSE_CATALOG is `sqlite:<path>` (default `$WIREHOUSE_HOME/catalog.sqlite`) or
        `postgres:<libpq connection string>`; WIREHOUSE_DATA_PATH a folder (default
        `$WIREHOUSE_HOME/lake/`) or `s3://bucket/prefix/`; WIREHOUSE_ARCHIVE and
        WIREHOUSE_STAGING folders (default `$WIREHOUSE_HOME/archive`, `.../staging`) or
        `s3://bucket/prefix/`; all reached with the standard AWS_* settings (so is an S3 inbox).
        """
        env = os.environ
        catalog = env.get("WIREHOUSE_CATALOG", "")
        if catalog and not catalog.startswith(("sqlite:", "postgres:")):
            raise ValueError(
                f"WIREHOUSE_CATALOG={catalog!r}: give sqlite:<path> or postgres:<connection string>"
            )
        if catalog.startswith("sqlite:"):
            catalog = "sqlite:" + str(Path(catalog.removeprefix("sqlite:")).expanduser().resolve())
        data_path, archive, staging = (
            _location(env.get(f"WIREHOUSE_{name}", ""))
            for name in ("DATA_PATH", "ARCHIVE", "STAGING")
        )
        places = (data_path, archive, staging, env.get("WIREHOUSE_INBOX", ""))
        on_s3 = any(v.startswith("s3://") for v in places)
        return cls.at(
            root or env.get("WIREHOUSE_HOME") or DEFAULT_HOME,
            catalog=catalog,
            data_path=data_path,
            s3=s3_from_env() if on_s3 else None,
            archive_path=archive,
            staging_path=staging,
        )


# A password in a libpq connection string: `password=x`, `password='x y'`, a URI's
# `user:x@` or `?password=x`.
_PASSWORDS = (
    re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.IGNORECASE),
    re.compile(r"(\w+://[^/:@\s]*:)([^@\s/]+)(?=@)"),
)
MASK = "***"


def masked(text: str, *secrets: str) -> str:
    """The text with connection strings' passwords and the given secrets replaced by ***."""
    for pattern in _PASSWORDS:
        text = pattern.sub(lambda found: found.group(1) + MASK, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def errors_masked(fn: Callable[P, R]) -> Callable[P, R]:
    """The function, an error of it that quotes a connection string's password raised again
    of the same kind with the password masked. For Prefect tasks: Prefect keeps a failed
    try's error in the task run's state and its log lines, and DuckDB quotes the catalog's
    whole connection string when it cannot reach it mid-night."""

    @functools.wraps(fn)
    def masking(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            shown = masked(str(error))
            if shown == str(error):
                raise
            try:
                hidden = type(error)(shown)
            except Exception:  # a kind that takes other arguments: its words, in a plain one
                hidden = RuntimeError(f"{type(error).__name__}: {shown}")
            raise hidden from None

    return masking


def secrets_of(home: Home) -> tuple[str, ...]:
    """The secret values a home's connections carry (its S3 keys), to mask in messages."""
    return (home.s3.secret, home.s3.key_id) if home.s3 is not None else ()


def _location(value: str) -> str:
    """A folder made absolute, or a URL as given."""
    return value if not value or "://" in value else str(Path(value).expanduser().resolve())


def _keys_from_here(region: str, endpoint: str | None, use_ssl: bool) -> S3Access:
    """An S3Access unpickled on a worker: the sender's place, this machine's keys."""
    env = os.environ
    return S3Access(
        env.get("AWS_ACCESS_KEY_ID", ""),
        env.get("AWS_SECRET_ACCESS_KEY", ""),
        region,
        endpoint,
        use_ssl,
    )


def s3_from_env() -> S3Access:
    """S3 credentials and endpoint from the standard AWS_* variables."""
    env = os.environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
    parsed = urlsplit(endpoint) if endpoint else None
    return S3Access(
        key_id=env.get("AWS_ACCESS_KEY_ID", ""),
        secret=env.get("AWS_SECRET_ACCESS_KEY", ""),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint=parsed.netloc if parsed else None,
        use_ssl=parsed is None or parsed.scheme == "https",
    )
