"""Validate a batch of article records with Great Expectations; split passing from failing."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlparse
from urllib.request import url2pathname

import pyarrow as pa
import pyarrow.compute as pc

from transforms.language import languages

logger = logging.getLogger(__name__)
T = TypeVar("T")

SUITE_PATH = Path(__file__).parent / "suites" / "articles.json"
# Identifies a row in results and in `failures`; unique per record by the warehouse contract.
ROW_KEY = "dump_file"
# Columns the suite checks that the table does not carry: computed by _dataframe.
DERIVED_TITLE_IS_BODY = "title_is_body"
DERIVED_UNEXPLAINED_NULL = "published_at_unexplained_null"
DERIVED_SOURCE_CONTRADICTS = "published_at_source_contradicts"
# The one kind of article that may state no time: a page of another outlet marked undated. On
# a Xinhua layout a missing time means a broken parser.
UNDATED_LAYOUT, UNDATED_SOURCE = "generic", "none"
# Filled in per run so that "no later than tomorrow" moves with the clock, not with the file.
PUBLISHED_AT_MAX_PARAMETER = "published_at_max"
PUBLISHED_AT_SLACK = timedelta(days=1)
# Filled in from the language detector: a language passes when it is a code the detector names,
# so the suite holds no list of its own to fall behind the parsers.
LANGUAGES_PARAMETER = "languages"

_DATASOURCE = "wirehouse"
_ASSET = "articles"
_BATCH_DEFINITION = "whole_batch"
_VALIDATION_DEFINITION = "articles"
# COMPLETE gives every failing row; without the values it keeps the stored result small (bodies
# of failing rows are not copied into gx/uncommitted) and the index-query string is not built.
# Validation definitions ready to run, by project folder (see _prepared_definition), and the
# lock that keeps GX to one thread at a time.
_DEFINITIONS: dict[Path | None, Any] = {}
_IN_MEMORY: dict[str, Any] = {}  # the in-memory context of the definition under None
_GX_LOCK = threading.RLock()
_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_KEY],
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
}


@dataclass(frozen=True, slots=True)
class StoredResult:
    """GX's result of one validation, as its validation-results store keeps it: the key (a
    tuple of strings) and the JSON. A worker validates without a project of its own and hands
    this back; the flow stores it in the home's project, where Data Docs read it."""

    key: tuple[str, ...]
    json: str


@dataclass(frozen=True)
class ValidationOutcome:
    """Rows that met every expectation, and for each failing row what it failed."""

    passed: pa.Table  # same schema as the input, original order
    failures: dict[str, list[str]]  # dump_file -> ["expect_...(column): notes", ...]
    expectations_evaluated: int
    docs_index: Path | None  # Data Docs index.html, when built
    statistics: dict[str, Any]  # expectation name -> unexpected row count
    result: StoredResult | None = None  # when validated without a project (gx_root None)


def validate_articles(
    table: pa.Table,
    gx_root: Path | None,
    *,
    now: datetime,
    build_docs: bool = True,
    run_name: str | None = None,
) -> ValidationOutcome:
    """Run the articles suite over the whole table in one validation and split pass from fail.

    With `gx_root`, the result is stored in the GX project there (and its Data Docs page built
    if asked). Without, as on a worker: GX validates in memory (an ephemeral context, nothing
    written) and the outcome carries the result, for `build_docs` where the project is.

    One validation at a time per process: a Data Context is not safe to share between threads
    (two validations at once read its YAML while the other rewrites it).
    """
    _check_input(table, now)
    if table.num_rows == 0:
        return ValidationOutcome(table, {}, 0, None, {})
    with _GX_LOCK:
        return _validate(table, gx_root, now, build_docs and gx_root is not None, run_name)


def _validate(
    table: pa.Table, gx_root: Path | None, now: datetime, build_docs: bool, run_name: str | None
) -> ValidationOutcome:
    gx = import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    definition = _prepared_definition(gx, None if gx_root is None else Path(gx_root))
    run_id = RunIdentifier(run_name=run_name, run_time=now)
    result = definition.run(
        batch_parameters={"dataframe": _dataframe(table)},
        expectation_parameters={
            PUBLISHED_AT_MAX_PARAMETER: now + PUBLISHED_AT_SLACK,
            LANGUAGES_PARAMETER: sorted(languages()),
        },
        result_format=_RESULT_FORMAT,
        run_id=run_id,
    )
    _raise_on_errors(result.results)
    keys: list[str] = table.column(ROW_KEY).to_pylist()
    failures, statistics = _failures_by_row(result.results, definition.suite, keys)
    failed = pa.array(list(failures), type=table.schema.field(ROW_KEY).type)
    passed = table.filter(pc.invert(pc.is_in(table.column(ROW_KEY), value_set=failed)))
    docs_index = None
    if build_docs:
        assert gx_root is not None
        docs_index = _build_docs(_file_context(gx, Path(gx_root)), result, run_id)
    stored = _taken_from_memory() if gx_root is None else None
    logger.info(
        "validated %d articles against %d expectations: %d passed, %d failed",
        table.num_rows,
        len(result.results),
        passed.num_rows,
        len(failures),
    )
    return ValidationOutcome(passed, failures, len(result.results), docs_index, statistics, stored)


def _taken_from_memory() -> StoredResult:
    """The result an in-memory validation just stored, taken out of its store (a worker lives
    for many nights: its store must not grow with them)."""
    store = _IN_MEMORY["context"].validation_results_store
    (key,) = store.list_keys()
    stored = StoredResult(tuple(key.to_tuple()), store.serialize(store.get(key)))
    store.remove_key(key)
    return stored


def expectation_name(config: Any) -> str:
    """A readable name for one expectation: its type and columns, e.g. `expect_x(body)`."""
    kwargs: Mapping[str, Any] = config.kwargs
    if "column" in kwargs:
        columns = [kwargs["column"]]
    elif "column_list" in kwargs:
        columns = list(kwargs["column_list"])
    else:
        columns = [kwargs[k] for k in ("column_A", "column_B") if k in kwargs]
    return f"{config.type}({', '.join(str(c) for c in columns)})"


def _check_input(table: pa.Table, now: datetime) -> None:
    """Reject misuse early: a naive clock, or rows that cannot be told apart."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (published_at is compared in UTC)")
    if ROW_KEY not in table.column_names:
        raise ValueError(f"table has no {ROW_KEY!r} column to identify its rows")
    keys = table.column(ROW_KEY)
    if keys.null_count:
        raise ValueError(f"{ROW_KEY} is null in {keys.null_count} row(s)")
    if pc.count_distinct(keys).as_py() != table.num_rows:
        raise ValueError(f"{ROW_KEY} must be unique per row to map failures back to rows")


def import_gx() -> ModuleType:
    """Import Great Expectations (slow: seconds) with analytics off; only called when needed."""
    # GX must never try to reach its analytics endpoint; it reads this at import time.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    if "great_expectations" not in sys.modules:
        _defer_scipy_stats()
    import great_expectations

    return great_expectations


class _Deferred(ModuleType):
    """Stands in for a module until one of its attributes is used, then imports the module."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self.__name__), name)


def _defer_scipy_stats() -> None:
    """Let GX's `from scipy import stats` take a stand-in instead of importing scipy.stats.

    Three of GX's modules import scipy.stats at import time for expectations and metrics this
    suite does not use (KL divergence, KS tests): a third of GX's import (about 1.3 s of CPU a
    night). `from scipy import stats` reads an attribute of the scipy package, so a stand-in set
    there serves them; its first use imports the real module (which then replaces it), and a
    plain `import scipy.stats` anywhere is untouched (the stand-in is not in sys.modules).
    """
    try:
        scipy = importlib.import_module("scipy")
    except ImportError:  # GX imports it at once and says so
        return
    if "stats" not in vars(scipy):  # not imported yet: an import sets the attribute
        setattr(scipy, "stats", _Deferred("scipy.stats"))  # noqa: B010 (a module: mypy refuses)


def import_gx_in_background() -> None:
    """Start importing Great Expectations on a thread of its own (a no-op once imported)."""
    threading.Thread(target=import_gx, name="import-gx", daemon=True).start()


def _prepared_definition(gx: ModuleType, gx_root: Path | None) -> Any:
    """The validation definition under gx_root (None: in memory), set up once per process and
    project.

    Opening the file context and adding the suite and definition cost about half a second: a
    night validates batch after batch, so that is paid once, not per batch. A project whose
    configuration has gone (a deleted home) is set up again.
    """
    if gx_root is None:
        if (cached := _DEFINITIONS.get(None)) is None:
            # GX logs, at INFO, the temporary folder of a Data Docs site it never builds here.
            logging.getLogger("great_expectations.data_context.types.base").setLevel(
                logging.WARNING
            )
            context = _IN_MEMORY["context"] = gx.get_context(mode="ephemeral")
            _configure(context, save=False)
            cached = _DEFINITIONS[None] = _validation_definition(gx, context, _load_suite(gx))
        return cached
    key = gx_root.resolve()
    cached = _DEFINITIONS.get(key)
    if cached is None or not (key / "gx" / "great_expectations.yml").is_file():
        suite = _load_suite(gx)
        cached = _DEFINITIONS[key] = _rebuilt_if_unreadable(
            key, lambda: _validation_definition(gx, _open_context(gx, key), suite)
        )
    return cached


def _file_context(gx: ModuleType, gx_root: Path) -> Any:
    """The file-mode Data Context under gx_root, created if missing, analytics and bars off."""
    return _rebuilt_if_unreadable(gx_root, lambda: _open_context(gx, gx_root))


def _rebuilt_if_unreadable(gx_root: Path, make: Callable[[], T]) -> T:
    """`make()` over the GX project in gx_root; if it fails on an existing project, once more
    over a new one.

    GX writes its project files in place, so a run killed at the wrong moment can leave one
    half-written, and every later night would fail to open the project. The project holds no
    data of the warehouse (suites come from this repo, results only feed Data Docs): an
    unreadable one is moved aside, with a warning, and created again.
    """
    gx_root.mkdir(parents=True, exist_ok=True)
    try:
        return make()
    except Exception as error:
        project = gx_root / "gx"
        if not project.exists():
            raise
        aside = gx_root / f"gx.unreadable-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        project.rename(aside)
        logger.warning(
            "the Great Expectations project in %s could not be opened (%s: %s), probably "
            "left half-written by a killed run; moved to %s and created again",
            project,
            type(error).__name__,
            error,
            aside,
        )
        return make()


def _open_context(gx: ModuleType, gx_root: Path) -> Any:
    context = gx.get_context(mode="file", project_root_dir=str(gx_root))
    _configure(context)
    return context


def _configure(context: Any, save: bool = True) -> None:
    """Turn analytics and tqdm progress bars off in the project config, saving only on change
    (an in-memory context has nothing to save to)."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    variables = context.variables
    # A ProgressBarsConfig when set in this process, a plain dict once reloaded from the YAML.
    bars = variables.progress_bars or {}
    bars_off = not any(bars[key] for key in ("globally", "metric_calculations") if key in bars)
    if variables.analytics_enabled is False and bars and bars_off:
        return
    variables.analytics_enabled = False
    variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    if save:
        variables.save()


def _load_suite(gx: ModuleType) -> Any:
    """The articles suite from the repo's JSON file, refusing one GX would load only in part."""
    data = json.loads(SUITE_PATH.read_text(encoding="utf-8"))
    suite = gx.ExpectationSuite(**data)
    # GX logs and skips an expectation it cannot parse; a silently shorter suite is worse.
    if len(suite.expectations) != len(data.get("expectations", [])):
        raise ValueError(f"{SUITE_PATH}: some expectations are invalid (see the GX log)")
    return suite


def _validation_definition(gx: ModuleType, context: Any, suite: Any) -> Any:
    """Get or add data source, asset and batch definition; add or update suite and definition."""
    try:
        source = context.data_sources.get(_DATASOURCE)
    except KeyError:
        source = context.data_sources.add_pandas(name=_DATASOURCE)
    try:
        asset = source.get_asset(_ASSET)
    except LookupError:
        asset = source.add_dataframe_asset(name=_ASSET)
    try:
        batch_definition = asset.get_batch_definition(_BATCH_DEFINITION)
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION)
    suite = context.suites.add_or_update(suite)
    definition = gx.ValidationDefinition(
        name=_VALIDATION_DEFINITION, data=batch_definition, suite=suite
    )
    return context.validation_definitions.add_or_update(definition)


def _dataframe(table: pa.Table) -> Any:
    """The table as pandas for GX: nested columns (captions) dropped, timestamps tz-aware.

    Plus derived columns the suite expects false, each computed here in one vectorised pass:
    `title_is_body` (GX's own record-wise check, `expect_select_column_values_to_be_unique_
    within_record`, runs a Python function per row, a fifth of a millisecond each), and the
    conditional checks on a missing publication time (GX's row conditions parse a pandas query
    per expectation): `published_at_unexplained_null` (no time, and not a page of another
    outlet marked undated) and `published_at_source_contradicts` (marked undated, yet a time).
    """
    flat = [f.name for f in table.schema if not pa.types.is_nested(f.type)]
    same = pc.equal(table.column("title"), table.column("body"))
    missing = pc.is_null(table.column("published_at"))
    marked = pc.fill_null(pc.equal(table.column("published_at_source"), UNDATED_SOURCE), False)
    generic = pc.fill_null(pc.equal(table.column("layout"), UNDATED_LAYOUT), False)
    undated_ok = pc.and_(generic, marked)
    return (
        table.select(flat)
        .append_column(DERIVED_TITLE_IS_BODY, same)
        .append_column(DERIVED_UNEXPLAINED_NULL, pc.and_(missing, pc.invert(undated_ok)))
        .append_column(DERIVED_SOURCE_CONTRADICTS, pc.and_(marked, pc.invert(missing)))
        .to_pandas()
    )


def _raise_on_errors(results: Iterable[Any]) -> None:
    """An expectation that raised tells nothing about the rows: that is a broken system."""
    for result in results:
        info = result.exception_info or {}
        if info.get("raised_exception"):
            name = expectation_name(result.expectation_config)
            raise RuntimeError(f"{name} raised: {info.get('exception_message')}")


def _failures_by_row(
    results: Iterable[Any], suite: Any, keys: list[str]
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Failed expectations per row key (in table and suite order) and unexpected counts."""
    order = {e.id: i for i, e in enumerate(suite.expectations)}
    ordered = sorted(results, key=lambda r: order.get(r.expectation_config.id, len(order)))
    failed: dict[str, list[str]] = {}
    statistics: dict[str, Any] = {}
    for result in ordered:
        name = expectation_name(result.expectation_config)
        if name in statistics:  # same type on the same columns twice: keep both counts
            name = f"{name}#{sum(k == name or k.startswith(name + '#') for k in statistics) + 1}"
        notes = _notes(result.expectation_config)
        reason = f"{name}: {notes}" if notes else name
        rows = _unexpected_keys(result, keys)
        statistics[name] = len(rows)
        for key in rows:
            failed.setdefault(key, []).append(reason)
    return {k: failed[k] for k in keys if k in failed}, statistics


def _notes(config: Any) -> str:
    """The expectation's human sentence: GX 1.x `notes` (shown in Data Docs), else meta.notes."""
    notes = config.notes or (config.meta or {}).get("notes") or ""
    return " ".join(notes) if isinstance(notes, list) else str(notes)


def _unexpected_keys(result: Any, keys: list[str]) -> list[str]:
    """Row keys one expectation flagged; a failure GX cannot attribute to rows flags all rows."""
    if result.success:
        return []
    entries = result.result.get("unexpected_index_list")
    if entries is None:
        logger.warning(
            "%s failed without row indices: every row fails it",
            expectation_name(result.expectation_config),
        )
        return list(keys)
    found: list[str] = []
    for entry in entries:
        # With exclude_unexpected_values GX gives {key: [k1, k2, ...]}; otherwise {key: k}.
        value = entry[ROW_KEY]
        found.extend(value if isinstance(value, list) else [value])
    return found


def build_docs(gx_root: Path, results: Collection[StoredResult]) -> Path | None:
    """Store the results that workers handed back in the GX project under gx_root, then render
    their Data Docs pages and the index; its path."""
    gx = import_gx()
    with _GX_LOCK:
        return _build_site(gx, Path(gx_root), results)


def _build_site(gx: ModuleType, gx_root: Path, results: Collection[StoredResult]) -> Path | None:
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = _file_context(gx, gx_root)
    store = context.validation_results_store
    keys = []
    for result in results:
        key = ValidationResultIdentifier.from_tuple(result.key)  # type: ignore[no-untyped-call]
        store.set(key, store.deserialize(result.json))
        keys.append(key)
    suite_id = ExpectationSuiteIdentifier(name=_suite_name())
    # Only these runs' pages and the suite page: a full rebuild grows with every stored night.
    urls = context.build_data_docs(resource_identifiers=[suite_id, *keys])
    url = urls.get("local_site") or next(iter(urls.values()), None)
    return Path(url2pathname(urlparse(url).path)) if url else None


def _suite_name() -> str:
    return str(json.loads(SUITE_PATH.read_text(encoding="utf-8"))["name"])


def _build_docs(context: Any, result: Any, run_id: Any) -> Path | None:
    """Render this run's validation page and the index into the local Data Docs site."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    suite_id = ExpectationSuiteIdentifier(name=result.suite_name)
    validation_id = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=result.batch_id
    )
    # Only this run's page and the suite page: a full rebuild grows with every stored night.
    urls = context.build_data_docs(resource_identifiers=[suite_id, validation_id])
    url = urls.get("local_site") or next(iter(urls.values()), None)
    return Path(url2pathname(urlparse(url).path)) if url else None
