from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def xlsform_corpus() -> Path:
    """The shared folder of real XLSForms, beside the repository.

    A developer's checkout without it skips these tests; CI (``CI`` set) always has
    it, so there a missing corpus fails instead of hiding the tests.
    """
    override = os.environ.get("HOMEWARD_SHARED_DIR")
    shared = Path(override) if override else Path(__file__).resolve().parents[3] / "shared"
    corpus = shared / "xlsforms"
    if not corpus.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared XLSForm corpus not found in {corpus}")
        pytest.skip(f"shared XLSForm corpus not found in {corpus}")
    return corpus
