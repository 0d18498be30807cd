"""The collector settings of a night's process: frozen while it runs, as they were after."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from flows.collector import imports_uncollected, night_collection, settle


class _Node:
    """An object that can sit in a reference cycle, and be watched by a weak reference."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def _collector_as_found() -> Iterator[None]:
    """Each test starts with nothing frozen, and leaves the collector as it found it."""
    gc.unfreeze()
    before = (gc.isenabled(), gc.get_threshold())
    yield
    gc.unfreeze()
    gc.set_threshold(*before[1])
    (gc.enable if before[0] else gc.disable)()


def test_a_night_freezes_what_exists_and_gives_it_back() -> None:
    threshold = gc.get_threshold()
    with night_collection():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] > threshold[0]
        assert gc.get_threshold()[1:] == threshold[1:]
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


def test_cycles_made_during_a_night_are_still_collected() -> None:
    with night_collection():
        young = _cycle()
        gc.collect()
        assert young() is None


def test_settled_cycles_wait_for_the_night_to_end() -> None:
    with night_collection():
        held = _Node()
        held.other = _Node()
        held.other.other = held
        settled = weakref.ref(held)
        settle()
        del held  # garbage from now on, but frozen: left out of the collector's passes
        gc.collect()
        assert settled() is not None
    gc.collect()
    assert settled() is None


def test_settling_frees_the_garbage_it_would_otherwise_freeze() -> None:
    # What a validation leaves: cycles no longer referenced, holding a batch's columns.
    with night_collection():
        garbage = _cycle()
        settle()
        assert garbage() is None


def test_the_collector_comes_back_even_when_the_night_fails() -> None:
    threshold = gc.get_threshold()
    with pytest.raises(RuntimeError), night_collection():
        raise RuntimeError("the night failed")
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


def test_imports_run_uncollected_and_stay_frozen() -> None:
    with imports_uncollected():
        assert not gc.isenabled()
        kept = _cycle()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert kept() is not None  # frozen for good, as imported modules are


def test_imports_leave_a_disabled_collector_disabled() -> None:
    gc.disable()
    with imports_uncollected():
        pass
    assert not gc.isenabled()
