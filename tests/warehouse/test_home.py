"""The home's settings as they travel to workers: storage keys stay on their machines."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from warehouse.home import Home, S3Access


def test_storage_keys_never_travel_with_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the flow's machine holds canary keys; the worker's machine has keys of its own
    home = Home.at(tmp_path, s3=S3Access("CANARYKEYID", "canary-secret", "eu-west-3", "s3:9000"))
    sent = pickle.dumps(home)
    assert b"CANARYKEYID" not in sent and b"canary-secret" not in sent
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "worker-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
    received = pickle.loads(sent)
    assert received.s3 == S3Access("worker-key", "worker-secret", "eu-west-3", "s3:9000")
    assert received.root == home.root
    # a worker without keys of its own gets none: botocore's own lookup (roles, profiles)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert pickle.loads(sent).s3 == S3Access("", "", "eu-west-3", "s3:9000")
