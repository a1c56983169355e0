"""uvicorn's access log is off unless asked for, and never shows a credential."""

from __future__ import annotations

import logging

import pytest

from server.cli import CredentialMask
from server.settings import Settings


def line(path: str) -> str:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", path, "1.1", 201),
        None,
    )
    assert CredentialMask().filter(record)
    return record.getMessage()


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        (
            "/v1/key/Ab$c!9xyz/projects/1/submission?deviceID=collect%3Aa",
            "/v1/key/***/projects/1/submission?deviceID=collect%3Aa",
        ),
        (
            "/v1/test/draft-token/projects/1/forms/f/draft.xml",
            "/v1/test/***/projects/1/forms/f/draft.xml",
        ),
        ("/v1/projects/1/forms/f.xml?st=link-token&x=1", "/v1/projects/1/forms/f.xml?st=***&x=1"),
        ("/v1/projects/1/forms", "/v1/projects/1/forms"),
    ],
)
def test_credentials_in_paths_are_masked(path: str, shown: str) -> None:
    assert line(path) == f'127.0.0.1:5000 - "POST {shown} HTTP/1.1" 201'


def test_access_log_is_off_unless_asked_for() -> None:
    assert Settings.from_env({}).access_log is False
    assert Settings.from_env({"HOMEWARD_ACCESS_LOG": "true"}).access_log is True
