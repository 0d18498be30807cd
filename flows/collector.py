"""Python's cyclic garbage collector in a night's process: what lasts is not scanned over and
over.

Before a night starts, the flow's process holds some 350,000 objects of its imports (Prefect,
Great Expectations, pandas), and a night adds its own: a dump, a path and a staged article per
file, which live until the night ends. The collector's full passes scanned all of them: a night
of 20,000 dumps ran eight or nine, each longer than the last, 2 to 2.5 s of CPU on the core that
reads, validates, dedupes and loads; its young passes, one per 700 new objects, cost 0.7 s
more. Frozen objects are left out of every pass (they are still freed when nothing refers to
them; only cycles among them wait for the night's end), and young passes come every 20,000 new
objects, so a night spends about 0.1 s in the collector.

Freezing keeps garbage too: a cycle that is garbage when frozen is never collected until the
night ends. Great Expectations and pandas leave cycles holding a whole batch's columns after
each validation, so a night that froze without collecting first kept about 26 MB of Arrow
buffers per batch of 5,000 (peak memory 1,110 MB at 60,000 dumps; 936 MB when `settle`
collects first, at the same speed: the pass scans only what came since the last freeze).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def imports_uncollected() -> Iterator[None]:
    """Imports with the collector off, their objects then left out of its passes for good.

    Imported modules live as long as the process: importing Prefect, the flow and Great
    Expectations, the collector made 900 passes (1.1 s of CPU) to free 7,000 of 350,000
    objects. Prefect's temporary server, importing its code this way (see `flows.server`),
    answers a second sooner.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


# New objects between two young passes (Python's default is 700): the night allocates in
# bursts of tens of thousands (rows to Python objects, the ledger), which then live on.
_YOUNG_OBJECTS = 20_000


@contextmanager
def night_collection() -> Iterator[None]:
    """Within the block, what exists when it starts, or when `settle` is called, is left out of
    the collector's passes; at its end everything goes back, and the thresholds as they were."""
    before = gc.get_threshold()
    gc.set_threshold(_YOUNG_OBJECTS, *before[1:])
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def settle() -> None:
    """Free the cycles that are garbage now, then leave what exists out of the collector's
    passes until `night_collection` ends.

    Called as the night's long-lived objects appear: the plan after discovery, each batch once
    parsed (and Great Expectations, imported while the first batches parse). What is alive then
    and dropped later (a validation running on another thread) is freed by reference counting,
    except cycles: those wait for the night's end.
    """
    gc.collect()  # frozen objects are left out: this scans what came since the last freeze
    gc.freeze()
