"""Night-over-night health on a real Prefect server: anomalies, events, the shipped automation
posting to a webhook receiver on loopback, and `wirehouse status`.

Seven nights of real BBC stories rendered as Xinhua dumps (bench/render.py), 30 dumps a night:
the fourth brings a third of them, the fifth has 9 of 30 broken (30%, under the 50% refusal
threshold), the sixth is ordinary again, the seventh is refused (21 of 30 broken).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

import warehouse
from bench.render import Story, load_corpus, page_of, render_dump
from deployments.alerts import install_alerts
from flows.nightly import NightFailed, nightly_ingest
from tests.conftest import BBC_SAMPLE

pytestmark = pytest.mark.usefixtures("prefect_server")

# (new dumps, of them broken) per night.
NIGHTS = [(30, 0), (30, 0), (30, 0), (10, 0), (30, 9), (30, 0), (30, 21)]
EXPECTED = [[], [], [], ["volume_drop"], ["failure_ratio"], [], ["failure_ratio"]]


@dataclass
class Receiver:
    """A webhook endpoint on loopback that keeps what is posted to it."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Nights:
    """The seven nights' summaries (the refused one's from its NightFailed) and their start."""

    summaries: list[dict[str, Any]]
    since: str
    home: Path


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 recording the JSON of every POST."""
    posts: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            posts.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", posts)
    finally:
        server.shutdown()
        server.server_close()


def _write_night(inbox: Path, night: int, stories: list[Story], broken: int) -> None:
    """Dumps of the stories, the last `broken` of them replaced by bytes that are no text."""
    for i, story in enumerate(stories):
        name = inbox / f"night-{night}" / f"{i:03d}_{night:02d}{i:014x}.txt"
        name.parent.mkdir(parents=True, exist_ok=True)
        if i >= len(stories) - broken:
            noise = random.Random(f"{night}:{i}")
            name.write_bytes(bytes(noise.getrandbits(8) for _ in range(3000)))
        else:
            serial = night * 100 + i
            name.write_text(render_dump(page_of(story, 0, serial, 0)), encoding="utf-8")


@pytest.fixture(scope="module")
def nights(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    """The automation installed, then the seven nights run one after the other."""
    automations = install_alerts(receiver.url)
    corpus = load_corpus(BBC_SAMPLE, 0)
    root = tmp_path_factory.mktemp("oncall")
    home = root / "home"
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    summaries = []
    used = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WIREHOUSE_BUILD_DOCS", "0")
        for night, (count, broken) in enumerate(NIGHTS, start=1):
            inbox = root / f"inbox-{night}"
            _write_night(inbox, night, corpus[used : used + count], broken)
            used += count
            try:
                summaries.append(nightly_ingest(inbox=str(inbox), home=str(home)))
            except NightFailed as refused:
                assert refused.summary is not None
                summaries.append(refused.summary)
    yield Nights(summaries, since, home)
    with get_client(sync_client=True) as client:  # later tests' nights alert nobody
        for automation in automations:
            client.delete_automation(automation)


def test_the_third_volume_and_the_high_failure_ratio_are_the_only_anomalies(
    nights: Nights,
) -> None:
    statuses = [s["status"] for s in nights.summaries]
    assert statuses == ["succeeded"] * 6 + ["failed"]
    found = [[a["kind"] for a in s["health"]["anomalies"]] for s in nights.summaries]
    assert found == EXPECTED
    assert [s["health"]["baseline_nights"] for s in nights.summaries] == [0, 0, 0, 3, 4, 5, 6]
    drop = nights.summaries[3]["health"]["anomalies"][0]
    assert (drop["value"], drop["baseline"]) == (10, 30)
    failure = nights.summaries[4]["health"]["anomalies"][0]
    assert (failure["value"], failure["baseline"]) == (0.3, 0.0)
    assert "mostly `binary`" in failure["detail"]
    # The refused night is judged too, against the loaded nights only.
    refused = nights.summaries[6]["health"]["anomalies"][0]
    assert (refused["value"], refused["baseline"]) == (0.7, 0.0)


def _events(nights: Nights, name: str) -> list[dict[str, Any]]:
    """The events of that name about these nights, read back from the server's API (other
    tests' nights share the session's server)."""
    ours = {s["run_id"] for s in nights.summaries}
    since = nights.since
    api = str(PREFECT_API_URL.value())
    body = {"filter": {"event": {"name": [name]}, "occurred": {"since": since}}, "limit": 50}
    page = httpx.post(f"{api}/events/filter", json=body, timeout=30).json()
    events = list(page["events"])
    while page.get("next_page"):
        page = httpx.get(page["next_page"], timeout=30).json()
        events += page["events"]
    return [e for e in events if e["payload"].get("run_id") in ours]


def _wait_for(count: int, read: Any, seconds: float = 90) -> list[Any]:
    deadline = time.monotonic() + seconds
    while True:
        found: list[Any] = read()
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_every_night_emits_its_events_with_the_flow_run_related(nights: Nights) -> None:
    with warehouse.connect(nights.home) as con:
        flow_runs = dict(con.execute("SELECT run_id, flow_run_id FROM runs").fetchall())
    anomalies = _wait_for(3, lambda: _events(nights, "wirehouse.night.anomaly"))
    got = sorted((e["payload"]["run_id"], e["payload"]["kind"]) for e in anomalies)
    wanted = [(nights.summaries[i]["run_id"], EXPECTED[i][0]) for i in (3, 4, 6)]
    assert got == sorted(wanted)
    for event in anomalies:
        payload = event["payload"]
        assert {"kind", "run_id", "value", "baseline"} <= payload.keys()
        related = {r["prefect.resource.id"]: r for r in event["related"]}
        flow_run = f"prefect.flow-run.{flow_runs[payload['run_id']]}"
        assert related[flow_run]["prefect.resource.role"] == "flow-run"
    completed = _wait_for(6, lambda: _events(nights, "wirehouse.night.completed"))
    assert sorted(e["payload"]["run_id"] for e in completed) == sorted(
        s["run_id"] for s in nights.summaries[:6]
    )
    night4 = next(e for e in completed if e["payload"]["run_id"] == nights.summaries[3]["run_id"])
    assert night4["payload"]["files"] == 10 and night4["payload"]["anomalies"] == ["volume_drop"]
    failed = _wait_for(1, lambda: _events(nights, "wirehouse.night.failed"))
    assert [e["payload"]["run_id"] for e in failed] == [nights.summaries[6]["run_id"]]
    assert failed[0]["payload"]["files"] == 30 and failed[0]["payload"]["quarantined"] == 21


def test_the_shipped_automation_posts_abnormal_nights_and_only_those(
    nights: Nights, receiver: Receiver
) -> None:
    ids = [s["run_id"] for s in nights.summaries]

    def ours() -> list[dict[str, Any]]:
        return [p for p in receiver.posts if any(i in p["text"] for i in ids)]

    posts = _wait_for(4, ours)
    time.sleep(5)  # anything more would come now
    subjects = sorted(p["subject"] for p in ours())
    assert subjects == sorted(
        [
            f"Wirehouse: abnormal night {ids[3]}: volume_drop",
            f"Wirehouse: abnormal night {ids[4]}: failure_ratio",
            f"Wirehouse: abnormal night {ids[6]}: failure_ratio",
            f"Wirehouse: night {ids[6]} failed",
        ]
    ), posts
    drop = next(p for p in posts if ids[3] in p["subject"])
    assert "10 new files against 30" in drop["body"] and drop["text"].startswith(drop["subject"])
    for ordinary in (ids[0], ids[1], ids[2], ids[5]):
        assert not any(ordinary in p["text"] for p in receiver.posts)


def test_status_shows_the_last_nights_with_their_anomalies(
    nights: Nights, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli import main

    monkeypatch.setenv("COLUMNS", "300")
    assert main(["--home", str(nights.home), "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for summary, kinds in zip(nights.summaries, EXPECTED, strict=True):
        line = next(line for line in lines if summary["run_id"] in line)
        for kind in kinds:
            assert kind in line
        if not kinds:
            assert not any(k in line for k in ("volume_", "failure_ratio", "new_layout"))


def test_a_night_that_cannot_start_emits_failed_with_its_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-inbox"
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    with pytest.raises(NightFailed, match="no such inbox"):
        nightly_ingest(inbox=str(missing), home=str(tmp_path / "home"))
    nights = Nights([{"run_id": None}], since, tmp_path)  # events of no run id

    def failed() -> list[dict[str, Any]]:
        return [
            e
            for e in _events(nights, "wirehouse.night.failed")
            if str(missing) in e["payload"].get("error", "")
        ]

    [event] = _wait_for(1, failed)
    assert event["resource"]["prefect.resource.id"] == "wirehouse.night.unknown"
