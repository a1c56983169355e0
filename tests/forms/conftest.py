from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def xlsform_corpus(shared_dir: Path) -> Path:
    """The shared folder of real XLSForms (see ``shared_dir`` in tests/conftest.py)."""
    return shared_dir / "xlsforms"
