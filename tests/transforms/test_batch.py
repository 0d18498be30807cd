"""What the parse workers send back travels whole: every field of every record survives pickling."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from tests.conftest import CASES, SAMPLES
from transforms.batch import parse_dumps
from transforms.night import Dump, Lineage
from warehouse.inbox import find_arrivals


def test_a_slices_records_survive_pickling_field_for_field() -> None:
    found = [*find_arrivals(SAMPLES, 0).files, *find_arrivals(CASES / "web", 0).files]
    read = [(Dump(f.dump_file, f.sha256, f.bytes, f.mtime), f.path.read_bytes()) for f in found]
    assert all(dump.captured_at for dump, _ in read)  # the file time travels with the dump
    parsed = parse_dumps(read, Lineage("run", datetime(2026, 11, 27, tzinfo=UTC)))
    assert parsed.articles and parsed.rejected  # both kinds of record are in the slice
    assert any(r.encoding for r in parsed.rejected if r.stage == "parse")

    sent = pickle.loads(pickle.dumps(read, protocol=pickle.HIGHEST_PROTOCOL))
    back = pickle.loads(pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL))

    assert sent == read
    assert back.articles == parsed.articles
    assert back.rejected == parsed.rejected
    assert back.rows.equals(parsed.rows)
    assert (back.signatures == parsed.signatures).all()
