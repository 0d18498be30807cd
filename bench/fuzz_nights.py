"""Hostile inputs through whole nights: `python -m bench.fuzz_nights --nights 3 --dumps 50000`.

bench/fuzz.py drives decode and parse alone; this drives `wirehouse ingest` itself. Each night
renders `--dumps` real-layout dumps (bench/render.py), then bends them with bench/fuzz.py's
mutators and tests/cases/make_hostile.py's ideas: dumps of the repo's other layouts and outlets
(samples/inbox), bytes flipped or cut, re-encoded, spliced with noise, plain noise, empty files,
raw HTML, .gz dumps (some corrupt), zip and tar.gz bundles (hostile member names, bombs, some
damaged), and files with awkward names (spaces, accents, tabs, newlines, `!`). The night runs
into one warehouse home that lives through all the nights (later nights meet earlier nights'
stories). After each night:

- every file of the inbox has its row in `files` (by the name the warehouse records), and the
  night's ledger holds no other top-level file;
- `wirehouse verify --inbox` passes: each dump is in exactly one of articles, duplicates,
  quarantine, the one its status names, its bytes archived, and the rest of DESIGN.md's
  invariants;
- the command exited 0 (a non-zero exit or a traceback is a crash, printed).

The night's failure ratio alarm is set to 1.0: a third of the inputs are hostile on purpose.
It prints inputs (dumps, bundle members counted one by one), inbox files, nights, seconds, and
outcomes by kind of input. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bench.fuzz import ENCODINGS, HOSTILE_NAMES, SAMPLES, damage, splice, tar_of, zip_of
from bench.render import REPO, render_inbox, shared_dir
from bench.run import (
    IngestFailed,
    Places,
    ingest,
    ingest_env,
    run_child,
    running_server,
    wirehouse_command,
)
from flows.settings import quiet_third_parties
from warehouse.inbox.folder import dump_name

# Share of the rendered dumps given each treatment; the rest stay as rendered.
TREATMENTS: dict[str, float] = {
    "other layout": 0.10,  # a dump of samples/inbox (other outlets, Xinhua's older layouts)
    "damaged": 0.10,  # bytes flipped or the tail cut (bench.fuzz.damage; some left whole)
    "re-encoded": 0.05,
    "spliced": 0.04,  # slices of dumps and noise (bench.fuzz.splice)
    "noise": 0.03,  # random bytes, empty, whitespace, raw HTML, a page code alone
    "gz": 0.05,  # a .gz dump, damaged at times
    "bundle": 0.12,  # the first dump of a zip or tar.gz of 1-6 (members counted as inputs)
    "awkward name": 0.02,
}
_AWKWARD = ("Nachrichten Ü über", "tab\there", "new\nline", "bang!member", " lead space", "é" * 40)
_HTML = b"<!DOCTYPE html>\n<html><head><title>t</title></head><body><p>BEIJING (Xinhua) --</p>"
_MAX_FAILURE_RATIO = "1.0"


@dataclass(slots=True)
class NightFigures:
    """One night: what went in, how long it took, what came out, and what went wrong."""

    night: int
    inputs: int
    files: int
    seconds: float
    wall_seconds: float
    inputs_by_kind: dict[str, int]
    run_id: str = ""
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    duplicates_by_kind: dict[str, int] = field(default_factory=dict)
    unaccounted: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    verify_failures: list[str] = field(default_factory=list)


def hostile_inbox(inbox: Path, dumps: int, seed: int) -> tuple[dict[str, str], Counter[str]]:
    """Render `dumps` dumps into `inbox` and bend them by TREATMENTS: each inbox file's name (as
    the warehouse records it) and the treatment it got, and inputs counted by treatment."""
    # The BBC corpus of ../shared when there is one, else the repo's own part of it (a fresh
    # clone, CI): the stories only seed the dumps the treatments then bend.
    shared = shared_dir() if (shared_dir() / "dumps" / "bbc").is_dir() else REPO / "tests/cases/bbc"
    render_inbox(inbox, dumps, seed=seed, rescrape_share=0.05, shared=shared)
    rng = random.Random(f"wirehouse-fuzz-nights:{seed}")
    samples = [path.read_bytes() for path in SAMPLES]
    texts = [data.decode("utf-8") for data in samples]
    paths = sorted(inbox.rglob("*.txt"))
    kinds, weights = list(TREATMENTS), list(TREATMENTS.values())
    rest = 1.0 - sum(weights)
    treatment: dict[str, str] = {}
    inputs: Counter[str] = Counter()
    at = 0
    while at < len(paths):
        path = paths[at]
        kind = rng.choices([*kinds, "rendered"], [*weights, rest])[0]
        if kind == "bundle":
            group = paths[at : at + rng.randint(1, 6)]
            at += len(group)
            written = _bundle(rng, path, [p.read_bytes() for p in group])
            for p in group:
                p.unlink()
            inputs[kind] += len(group)
        else:
            at += 1
            written = _bent(rng, kind, path, samples, texts)
            inputs[kind] += 1
        treatment[dump_name(inbox, written)] = kind
    return treatment, inputs


def _bent(
    rng: random.Random, kind: str, path: Path, samples: list[bytes], texts: list[str]
) -> Path:
    """One dump given a treatment (in place, or moved to its new name); the file written."""
    if kind == "rendered":
        return path
    data = path.read_bytes()
    if kind == "other layout":
        data = rng.choice(samples)
    elif kind == "damaged":
        data = damage(rng, data)
    elif kind == "re-encoded":
        data = data.decode("utf-8").encode(rng.choice(ENCODINGS), errors="replace")
    elif kind == "spliced":
        data = splice(rng, texts)
    elif kind == "noise":
        data = rng.choice(
            (
                rng.randbytes(rng.randint(1, 4096)),
                b"",
                b" \n\t\r\n\xc2\xa0 \n",
                _HTML,
                data[-42:],
            )
        )
    elif kind == "gz":
        data = damage(rng, gzip.compress(damage(rng, data), mtime=0))
        path.unlink()
        path = path.with_name(path.name + ".gz")
    elif kind == "awkward name":
        path.unlink()
        path = path.with_name(f"{rng.choice(_AWKWARD)} {path.name}")
    path.write_bytes(data)
    return path


def _bundle(rng: random.Random, first: Path, dumps: list[bytes]) -> Path:
    """A zip or tar.gz of the dumps beside the first one (member names hostile at times, a
    bomb at times, the archive damaged at times); the file written."""
    names = [
        rng.choice(HOSTILE_NAMES) if rng.random() < 0.1 else f"pages/{i:02d}.txt"
        for i in range(len(dumps))
    ]
    members = [(name, damage(rng, data)) for name, data in zip(names, dumps, strict=True)]
    if rng.random() < 0.5:
        data, suffix = zip_of(members, zeros=rng.random() < 0.02), ".zip"
    else:
        data, suffix = tar_of(members), ".tar.gz"
    path = first.with_name(first.stem + suffix)
    path.write_bytes(damage(rng, data) if rng.random() < 0.2 else data)
    return path


def account(home: Path, run_id: str, treatment: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The night's outcomes (ledger status, by treatment) and the inbox files with no row in
    `files` (or the night's top-level files that are not in the inbox), read from the lake."""
    import warehouse

    con = warehouse.connect(home)
    try:
        con.register(
            "inbox",
            pa.table({"name": list(treatment), "kind": list(treatment.values())}),
        )
        # A bundle member's row (`bundle!member`) is the bundle's input; a name with `!` of
        # its own is a file of the inbox like any other.
        ledger = (
            "(SELECT CASE WHEN strpos(dump_file, '!') > 0 AND split_part(dump_file, '!', 1) IN "
            "(SELECT name FROM inbox WHERE kind = 'bundle') THEN split_part(dump_file, '!', 1) "
            "ELSE dump_file END AS name, dump_file, status FROM files WHERE run_id = $run)"
        )
        rows = con.execute(
            f"SELECT i.kind, coalesce(l.status, 'MISSING'), count(*) FROM inbox i "
            f"LEFT JOIN {ledger} l USING (name) GROUP BY ALL ORDER BY ALL",
            {"run": run_id},
        ).fetchall()
        missing = con.execute(
            f"SELECT name FROM inbox ANTI JOIN {ledger} l USING (name) "
            f"UNION ALL SELECT name FROM {ledger} l ANTI JOIN inbox USING (name) "
            "WHERE l.dump_file = l.name ORDER BY 1",
            {"run": run_id},
        ).fetchall()
        reasons = dict(
            con.execute(
                "SELECT reason, count(*) FROM quarantine WHERE run_id = $run GROUP BY ALL "
                "ORDER BY 2 DESC",
                {"run": run_id},
            ).fetchall()
        )
        kinds = dict(
            con.execute(
                "SELECT kind, count(*) FROM duplicates WHERE run_id = $run GROUP BY ALL "
                "ORDER BY 2 DESC",
                {"run": run_id},
            ).fetchall()
        )
    except duckdb.Error as error:
        return {}, [f"the lake could not be read: {error}"]
    finally:
        con.close()
    outcomes: dict[str, dict[str, int]] = {}
    for kind, status, n in rows:
        outcomes.setdefault(kind, {})[status] = n
    return {"outcomes": outcomes, "reasons": reasons, "kinds": kinds}, [m for (m,) in missing]


def one_night(
    night: int, work: Path, home: Path, places: Places, dumps: int, seed: int
) -> NightFigures:
    """Make a night's hostile inbox, run the night on it, account for every input, verify."""
    inbox = work / f"inbox-{night}"
    treatment, inputs = hostile_inbox(inbox, dumps, seed + night)
    figures = NightFigures(night, sum(inputs.values()), len(treatment), 0.0, 0.0, dict(inputs))
    env = {"WIREHOUSE_MAX_FAILURE_RATIO": _MAX_FAILURE_RATIO}
    try:
        done = ingest(inbox, home, places, served=places.api_url is not None, extra_env=env)
    except IngestFailed as error:
        figures.crashes.append(str(error))
        shutil.rmtree(inbox, ignore_errors=True)
        return figures
    figures.seconds = float(done.report["seconds"])
    figures.wall_seconds = round(done.child.wall, 2)
    figures.run_id = done.report["run_id"]
    if "Traceback" in done.child.stderr:
        figures.crashes.append("a traceback in the night's output:\n" + done.child.stderr[-3000:])
    found, figures.unaccounted = account(home, figures.run_id, treatment)
    figures.outcomes = found.get("outcomes", {})
    figures.quarantined_by_reason = found.get("reasons", {})
    figures.duplicates_by_kind = found.get("kinds", {})
    cmd = [wirehouse_command(), "verify", "--inbox", str(inbox)]
    checked = run_child(cmd, ingest_env(home, places.prefect_home, False, places.pycache), REPO)
    if checked.returncode != 0:
        figures.verify_failures.append((checked.stderr or checked.stdout)[-3000:])
    shutil.rmtree(inbox, ignore_errors=True)
    return figures


def summary(nights: list[NightFigures], seconds: float) -> dict[str, Any]:
    """Totals over the nights, and the time a million inputs would take at this pace."""
    inputs = sum(n.inputs for n in nights)
    outcomes: dict[str, Counter[str]] = {}
    for n in nights:
        for kind, by_status in n.outcomes.items():
            outcomes.setdefault(kind, Counter()).update(by_status)
    run = [n.wall_seconds for n in nights if n.wall_seconds]
    return {
        "nights": len(nights),
        "inputs": inputs,
        "files": sum(n.files for n in nights),
        "seconds": round(seconds, 1),
        "night_wall_seconds_median": round(statistics.median(run), 1) if run else None,
        "hours_per_million_inputs": round(seconds / inputs * 1e6 / 3600, 2) if inputs else None,
        "inputs_by_kind": dict(sum((Counter(n.inputs_by_kind) for n in nights), Counter())),
        "outcomes_by_kind": {k: dict(v) for k, v in sorted(outcomes.items())},
        "quarantined_by_reason": dict(
            sum((Counter(n.quarantined_by_reason) for n in nights), Counter()).most_common()
        ),
        "duplicates_by_kind": dict(
            sum((Counter(n.duplicates_by_kind) for n in nights), Counter()).most_common()
        ),
        "unaccounted": sum(len(n.unaccounted) for n in nights),
        "crashes": sum(len(n.crashes) for n in nights),
        "verify_failures": sum(len(n.verify_failures) for n in nights),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the nights, print each and the totals; exit 1 on any crash, input
    unaccounted for or failed verify."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz_nights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nights", type=int, default=1)
    parser.add_argument("--dumps", type=int, default=50_000, help="rendered dumps a night")
    parser.add_argument("--minutes", type=float, help="start no night past this many minutes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-url", help="a running Prefect server's API (else one is started)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.nights < 1 or args.dumps < 1:
        parser.error("--nights and --dumps must be at least 1")
    quiet_third_parties()
    warnings.simplefilter("ignore")  # zipfile warns of the duplicate member names made on purpose
    work = Path(tempfile.mkdtemp(prefix="wirehouse-fuzz-nights-"))
    places = Places(work / "prefect-home", work / "pycache", api_url=args.api_url)
    server = None
    nights: list[NightFigures] = []
    begin = time.perf_counter()
    try:
        if places.api_url is None:
            server = running_server(places)
            places = replace(places, api_url=server.api_url)
        for night in range(args.nights):
            if args.minutes and time.perf_counter() - begin > 60 * args.minutes:
                break
            nights.append(one_night(night, work, work / "home", places, args.dumps, args.seed))
            _print_night(nights[-1])
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    totals = summary(nights, time.perf_counter() - begin)
    print(json.dumps(totals, indent=2, ensure_ascii=False))
    if args.json:
        document = {"summary": totals, "nights": [asdict(n) for n in nights]}
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    bad = totals["crashes"] + totals["unaccounted"] + totals["verify_failures"]
    print(
        f"fuzz nights: {totals['inputs']:,} inputs in {totals['nights']} nights, "
        f"{totals['seconds']:,.0f} s; {totals['crashes']} crashes, {totals['unaccounted']} "
        f"inputs unaccounted for, {totals['verify_failures']} failed verify"
    )
    return 1 if bad else 0


def _print_night(n: NightFigures) -> None:
    """One line a night, then whatever went wrong in full."""
    statuses = Counter[str]()
    for by_status in n.outcomes.values():
        statuses.update(by_status)
    print(
        f"night {n.night + 1}: {n.inputs:,} inputs in {n.files:,} files, flow {n.seconds:.1f} s, "
        f"wall {n.wall_seconds:.1f} s; files {dict(statuses)}; crashes {len(n.crashes)}, "
        f"unaccounted {len(n.unaccounted)}, verify {'FAILED' if n.verify_failures else 'ok'}",
        flush=True,
    )
    for problem in [*n.crashes, *n.verify_failures]:
        print(f"  PROBLEM: {problem}", flush=True)
    for name in n.unaccounted[:20]:
        print(f"  UNACCOUNTED: {name!r}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.exit(main())
