"""The warehouse home: where inbox, lake, archive, Data Docs and the catalog live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TABLES = ("articles", "duplicates", "quarantine", "files", "runs")


@dataclass(frozen=True, slots=True)
class Home:
    """Paths under one WIREHOUSE_HOME folder; nothing is created until `ensure` is called."""

    root: Path

    @property
    def inbox(self) -> Path:
        """Where the night's dumps arrive (by default)."""
        return self.root / "inbox"

    @property
    def lake(self) -> Path:
        """Parquet files of every table, one folder per table."""
        return self.root / "lake"

    @property
    def archive(self) -> Path:
        """Raw dump bytes, content-addressed by SHA-256."""
        return self.root / "archive"

    @property
    def gx(self) -> Path:
        """Great Expectations' file context and its Data Docs."""
        return self.root / "gx"

    @property
    def reports(self) -> Path:
        """One JSON summary per run, for people and benchmarks."""
        return self.root / "reports"

    @property
    def staging(self) -> Path:
        """Intermediate files of the run in progress; removed when it commits or fails."""
        return self.root / "staging"

    @property
    def catalog(self) -> Path:
        """The DuckDB file analysts open: views over the lake."""
        return self.root / "warehouse.duckdb"

    @property
    def lock(self) -> Path:
        """Held by the one run allowed at a time."""
        return self.root / ".wirehouse.lock"

    def table_dir(self, table: str) -> Path:
        """The lake folder of one table."""
        return self.lake / table

    def ensure(self) -> Home:
        """Create the folders a run writes to; returns self."""
        folders = (self.lake, self.reports, self.archive / "packs", self.archive / "index")
        for path in (*folders, *(self.table_dir(t) for t in TABLES)):
            path.mkdir(parents=True, exist_ok=True)
        return self

    @classmethod
    def at(cls, root: str | Path) -> Home:
        """A home at an absolute version of the given path."""
        return cls(Path(root).expanduser().resolve())
