"""Hostile input end to end: every file of a bent corpus gets its expected fate; the night goes on.

The corpus is tests/cases/hostile (rebuilt by tests/cases/make_hostile.py); its EXPECTED.json
names each file's and member's fate. The large cases are generated here, in tmp_path.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from flows.nightly import nightly_ingest
from tests.conftest import CASES, SAMPLES
from warehouse.archive import read_archived
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.verify import violations

pytestmark = pytest.mark.usefixtures("prefect_server")

HOSTILE = CASES / "hostile"
MB = 1 << 20
EDOA = "xinhua-2008/ed0a9e9a-2c3a-4b6a-8a4a-e187c6934887.txt"
VOLATILE = {"run_id", "ingested_at", "first_seen_at", "quarantined_at"}


@pytest.fixture(autouse=True)
def _no_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The committed corpus plus the generated large and link cases, and every expected fate."""
    inbox = tmp_path / "inbox"
    shutil.copytree(HOSTILE / "inbox", inbox)
    expected: dict[str, Any] = json.loads((HOSTILE / "EXPECTED.json").read_text())
    expected.update(_large_cases(inbox))
    expected.update(_link_and_name_cases(inbox, tmp_path))
    return inbox, expected


def _large_cases(inbox: Path) -> dict[str, Any]:
    """A 30 MB file, a 3 MB single line, and bombs: zip, tar.gz and gz of zeros."""
    big = inbox / "large"
    big.mkdir()
    with (big / "huge.txt").open("wb") as handle:
        for _ in range(30):
            handle.write(b"Xinhua news text, over and over. " * (MB // 33))
    words = b"alpha beta Xinhua said the May (Xinhua) -- " * (3 * MB // 44)
    (big / "single-line.txt").write_bytes(words)
    with zipfile.ZipFile(big / "zeros.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", (SAMPLES / EDOA).read_bytes())
        with archive.open("zeros.txt", "w", force_zip64=True) as member:
            for _ in range(200):
                member.write(bytes(MB))
    with tarfile.open(big / "zeros.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("zeros.txt")
        info.size = 64 * MB
        archive.addfile(info, _Zeros(info.size))
    with gzip.open(big / "zeros.txt.gz", "wb") as handle:
        for _ in range(64):
            handle.write(bytes(MB))
    q = _quarantined
    return {
        "large/huge.txt": q("read", "too_large"),
        "large/single-line.txt": q("parse", "not_an_article"),
        "large/zeros.zip": {"status": "unpacked"},
        "large/zeros.zip!readme.txt": {"status": "duplicate", "kind": "same_file"},  # tar.gz's
        "large/zeros.zip!zeros.txt": q("read", "compression_bomb"),
        "large/zeros.tar.gz": q("read", "bundle_refused"),
        "large/zeros.txt.gz": q("read", "too_large"),
    }


class _Zeros:
    """A file object of n zero bytes, read in chunks (the bomb is never held in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def _link_and_name_cases(inbox: Path, tmp_path: Path) -> dict[str, Any]:
    """A symlink pointing outside the inbox, and a name whose bytes are not UTF-8."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes((SAMPLES / "2019/05/000_c903989559a3121d.txt").read_bytes())
    (inbox / "links").mkdir()
    (inbox / "links" / "outside").symlink_to(outside)
    page = SAMPLES / "web-pages/2391433d-5b8f-462a-8ee8-498805b21970.txt"
    (inbox / os.fsdecode(b"caf\xe9.txt")).write_bytes(page.read_bytes())
    return {
        "links/outside": _quarantined("read", "symlink"),
        "caf\\xe9.txt": {"status": "loaded", "encoding": "utf-8"},
    }


def _quarantined(stage: str, reason: str) -> dict[str, Any]:
    return {"status": "quarantined", "stage": stage, "reason": reason}


def ingest(inbox: Path, home: Path) -> dict[str, Any]:
    """One night over the corpus; most of it is meant to fail, so the ratio gate is off."""
    return nightly_ingest(inbox=str(inbox), home=str(home), max_failure_ratio=1.0)


def fates(home: Path) -> dict[str, dict[str, Any]]:
    """Each ledger row's fate, in the words of EXPECTED.json."""
    with lake_connection(Home.at(home)) as con:
        status = dict(con.execute("SELECT dump_file, status FROM files").fetchall())
        loaded = dict(con.execute("SELECT dump_file, encoding FROM articles").fetchall())
        copies = dict(con.execute("SELECT dump_file, kind FROM duplicates").fetchall())
        refused = {
            name: (stage, reason)
            for name, stage, reason in con.execute(
                "SELECT dump_file, stage, reason FROM quarantine"
            ).fetchall()
        }
    out: dict[str, dict[str, Any]] = {}
    for name, state in status.items():
        fate: dict[str, Any] = {"status": state}
        if state == "loaded":
            fate["encoding"] = loaded[name]
        elif state == "duplicate":
            fate["kind"] = copies[name]
        elif state == "quarantined":
            fate["stage"], fate["reason"] = refused[name]
        out[name] = fate
    return out


def snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table's rows, lineage columns aside, in a stable order."""
    out = {}
    with lake_connection(Home.at(home)) as con:
        for table in ("articles", "duplicates", "quarantine", "files"):
            rows = con.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in rows.description]
            keep = [i for i, n in enumerate(names) if n not in VOLATILE]
            out[table] = sorted((tuple(r[i] for i in keep) for r in rows.fetchall()), key=repr)
    return out


def test_every_hostile_file_gets_its_fate_and_the_night_goes_on(
    hostile: tuple[Path, dict[str, Any]], home: Path, tmp_path: Path
) -> None:
    inbox, expected = hostile
    summary = ingest(inbox, home)
    assert summary["status"] == "succeeded"
    got = fates(home)
    wanted = {name: fate for name, fate in expected.items() if fate["status"] is not None}
    # every file and member in the ledger with its fate, and nothing else: (got, expected)
    wrong = {n: (got.get(n), wanted.get(n)) for n in got.keys() | wanted.keys()}
    wrong = {n: pair for n, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, json.dumps(wrong, indent=1, sort_keys=True)
    with lake_connection(Home.at(home)) as con:
        assert violations(con) == []
    # nothing escaped: no member was written anywhere, and staging is gone after the run
    assert [p for p in tmp_path.rglob("*") if p.name in {"evil.txt", "abs.txt"}] == []
    assert not (home / "staging").exists() or not any((home / "staging").iterdir())


def test_bundles_keep_their_raw_bytes_and_members_are_read_from_memory(
    hostile: tuple[Path, dict[str, Any]], home: Path
) -> None:
    inbox, _ = hostile
    ingest(inbox, home)
    with lake_connection(Home.at(home)) as con:
        rows = con.execute(
            "SELECT dump_file, dump_sha256, bytes FROM files WHERE dump_file LIKE 'bundles/%'"
        ).fetchall()
        raw = {name: sha for name, sha, _ in rows if "!" not in name}
        for name, sha in raw.items():  # the archives themselves, unpacked or refused
            assert read_archived(Home.at(home), con, sha) == (inbox / name).read_bytes()
        with zipfile.ZipFile(inbox / "bundles/night.zip") as archive:
            member = archive.read("pages/1537674b.txt")
        [(sha, size)] = [(s, b) for n, s, b in rows if n == "bundles/night.zip!pages/1537674b.txt"]
        assert size == len(member) and read_archived(Home.at(home), con, sha) == member
    # a .gz is its dump: hashed and sized decompressed, so it is a same_file copy of the plain one
    gz = fates(home)["gz/same-page.txt.gz"]
    assert gz == {"status": "duplicate", "kind": "same_file"}


def test_a_second_night_over_the_hostile_inbox_changes_nothing(
    hostile: tuple[Path, dict[str, Any]], home: Path
) -> None:
    inbox, expected = hostile
    ingest(inbox, home)
    before = snapshot(home)
    second = ingest(inbox, home)
    assert second["counts"]["files"] == 0
    top_level = [n for n, f in expected.items() if "!" not in n and f["status"] is not None]
    assert second["counts"]["already_recorded"] == len(top_level)  # bundles skipped unopened
    assert snapshot(home) == before


def test_the_limits_are_settings(
    hostile: tuple[Path, dict[str, Any]], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, _ = hostile
    monkeypatch.setenv("WIREHOUSE_MAX_BUNDLE_MEMBERS", "2")
    ingest(inbox, home)
    got = fates(home)
    for bundle in ("night.zip", "evil.zip", "2019-05-03.tar.gz"):  # 3 to 5 members each
        assert got[f"bundles/{bundle}"] == _quarantined("read", "bundle_refused")
    assert not any(name.startswith("bundles/") and "!" in name for name in got)
