"""Shared fixtures: the sample inbox, fresh homes, one real Prefect server per session."""

from __future__ import annotations

import os

for _key, _value in (
    ("DO_NOT_TRACK", "1"),
    ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
    ("GX_ANALYTICS_ENABLED", "False"),
    ("TQDM_DISABLE", "1"),
    ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"),
    ("WIREHOUSE_SETTLE_SECONDS", "0"),
    # The visibility delay guards readers racing a commit; tests/crash/test_concurrency.py and
    # tests/warehouse/test_snapshot.py test it with it on, other tests need not wait.
    ("WIREHOUSE_VISIBILITY_DELAY_SECONDS", "0"),
):
    os.environ.setdefault(_key, _value)

import shutil  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest_plugins = ["tests.servers"]

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "inbox"
CASES = REPO / "tests" / "cases"
SHARED = Path(os.environ.get("WIREHOUSE_SHARED", REPO.parent / "shared"))
# 80 BBC articles of each of the five topics (the first by name), laid out as ../shared is
# (dumps/bbc/<topic>/): the tests that render stories need no checkout beside the repo.
BBC_SAMPLE = CASES / "bbc"


def pytest_addoption(parser: pytest.Parser) -> None:
    """--update-golden rewrites the golden parser outputs (review the diff)."""
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real temporary Prefect server for the whole session (started on first use)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def sample_inbox(tmp_path: Path) -> Path:
    """A copy of the repo's sample inbox, with its mtimes kept."""
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLES, inbox)
    return inbox


@pytest.fixture
def sample_inbox_with_bundles(sample_inbox: Path) -> Path:
    """The sample inbox with bundles (.zip, .tar.gz) and .gz dumps, good and corrupt."""
    for folder in ("bundles", "gz"):
        shutil.copytree(CASES / "hostile" / "inbox" / folder, sample_inbox / folder)
    return sample_inbox


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty warehouse home."""
    path = tmp_path / "home"
    path.mkdir()
    return path
