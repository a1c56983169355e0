from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def xlsform_corpus() -> Path:
    """The shared folder of real XLSForms; tests using it skip when it is absent."""
    override = os.environ.get("HOMEWARD_SHARED_DIR")
    shared = Path(override) if override else Path(__file__).resolve().parents[3] / "shared"
    corpus = shared / "xlsforms"
    if not corpus.is_dir():
        pytest.skip(f"shared XLSForm corpus not found in {corpus}")
    return corpus
