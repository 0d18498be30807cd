"""Secrets in what is shown of a home: connection strings' passwords masked, S3 keys left out."""

from __future__ import annotations

import pytest

from warehouse.home import Home, S3Access, masked


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("host=db password=s3cret dbname=wh", "host=db password=*** dbname=wh"),
        ("host=db PASSWORD = 's3 cr\\'et' user=u", "host=db PASSWORD = *** user=u"),
        ("postgresql://user:s3cret@db:5432/wh", "postgresql://user:***@db:5432/wh"),
        (
            "postgresql://db/wh?user=u&password=s3cret&sslmode=off",
            "postgresql://db/wh?user=u&password=***&sslmode=off",
        ),
        (
            'at "host=db password=s3cret dbname=wh": refused',
            'at "host=db password=*** dbname=wh": refused',
        ),
        ("http://127.0.0.1:9000/bucket", "http://127.0.0.1:9000/bucket"),
    ],
)
def test_passwords_in_connection_strings_are_masked(text: str, shown: str) -> None:
    assert masked(text) == shown


def test_a_home_shows_no_secret() -> None:
    home = Home.at(
        "/srv/wh",
        catalog="postgres:host=db user=u password=s3cret",
        s3=S3Access("AKIAKEYID", "s3cretkey", endpoint="127.0.0.1:9000"),
    )
    assert home.catalog_shown == "postgres:host=db user=u password=***"
    for shown in (repr(home), repr(home.s3), str(home)):
        assert "s3cret" not in shown and "AKIAKEYID" not in shown
    assert (
        masked("key AKIAKEYID secret s3cretkey", "AKIAKEYID", "s3cretkey") == "key *** secret ***"
    )
