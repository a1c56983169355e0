"""A pytest plugin loaded into pyodk's own test run, in pyodk's venv (never into ours).

pyodk's ``tests/test_client.py`` is run unchanged. Its live tests are guarded
by ``@skipUnless(condition=E2E_WITH_REAL_REQUESTS, reason="Requires Central
instance.")`` with the constant set to False in the file: pyodk's maintainers
flip it by hand when they have a Central to test against. This plugin does the
same without editing the file: it is imported before the test module, and
makes ``unittest.skipUnless`` a no-op for that one reason only.

It also creates, through pyodk itself, the one fixture the suite assumes
already exists (the form ``'=+/*-451%/%``, the suite's ``pull_data`` form under
that id).
"""

from __future__ import annotations

import importlib
import unittest
from collections.abc import Callable
from typing import Any

import pytest

LIVE_REASON = "Requires Central instance."
SPECIALS_FORM_ID = "'=+/*-451%/%"
_skip_unless = unittest.skipUnless


def _skip_unless_not_live(condition: object, reason: str) -> Callable[[Any], Any]:
    if reason == LIVE_REASON:
        return lambda test: test
    return _skip_unless(condition, reason)


unittest.skipUnless = _skip_unless_not_live


def pytest_sessionstart(session: pytest.Session) -> None:
    from pyodk.client import Client
    from pyodk.errors import PyODKError

    # pyodk's own test package (the suite's ``tests``), not Homeward's.
    resources = importlib.import_module("tests.resources")
    md_table = importlib.import_module("tests.utils.md_table")
    with Client() as client:
        try:
            client.forms.create(
                definition=md_table.md_table_to_bytes(
                    mdstr=resources.forms_data.get_md__pull_data()
                ),
                form_id=SPECIALS_FORM_ID,
                attachments=[(resources.RESOURCES / "forms" / "fruits.csv").as_posix()],
            )
        except PyODKError as error:
            if not error.is_central_error(code=409.3):
                raise
