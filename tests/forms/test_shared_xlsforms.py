"""Every XLSForm of the shared corpus converts, or fails, as expected.json says."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from forms.xform import read_xform
from forms.xlsform import XlsFormError, compile_xlsform


def _shared_dir() -> Path:
    override = os.environ.get("HOMEWARD_SHARED_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "shared"


CORPUS = _shared_dir() / "xlsforms"
EXPECTED: dict[str, dict[str, Any]] = (
    json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    if (CORPUS / "expected.json").is_file()
    else {}
)


@pytest.mark.skipif(not EXPECTED, reason=f"shared XLSForm corpus not found in {CORPUS}")
@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_shared_xlsform_converts_as_expected(file_name: str) -> None:
    expected = EXPECTED[file_name]
    data = (CORPUS / file_name).read_bytes()
    # Homeward always converts the uploaded bytes (never a path), so
    # converts_from_bytes is what counts when it differs from converts_from_path.
    converts = expected.get("converts_from_bytes", expected["converts"])

    if not converts:
        with pytest.raises(XlsFormError) as caught:
            compile_xlsform(data, file_name=file_name, form_id_fallback=Path(file_name).stem)
        assert expected["error_contains"] in str(caught.value)
        return

    result = compile_xlsform(data, file_name=file_name, form_id_fallback=Path(file_name).stem)
    schema = read_xform(result.xml)
    assert schema.form_id == expected["form_id"]
    assert len(result.warnings) == expected["warnings"]
    media = {ref.name for ref in schema.media}
    for name in expected.get("attachments", []):
        assert name in media
    generated = expected.get("generated_attachments", [])
    assert (result.itemsets_csv is not None) == ("itemsets.csv" in generated)
    for name in generated:
        assert name in media
    for companion in expected.get("companion_files", []):
        assert (CORPUS / companion).is_file()
        assert companion.split("__", 1)[1] in media


def test_the_parametrised_corpus_is_the_shared_one(xlsform_corpus: Path) -> None:
    # EXPECTED is read when the module is collected; this pins that it was read from
    # the folder the fixture finds (which fails in CI when the folder is missing).
    assert xlsform_corpus.resolve() == CORPUS.resolve()
    assert set(EXPECTED) == set(json.loads((xlsform_corpus / "expected.json").read_text()))
