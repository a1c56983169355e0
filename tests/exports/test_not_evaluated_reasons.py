"""Checks that cannot run say why with a stable code (the web app translates it)."""

from __future__ import annotations

import json
import typing
from pathlib import Path

from exports.checks import CheckSettings, run_checks
from exports.checks.run import NotEvaluatedReason
from exports.records import ExportRecord
from forms.xform import read_xform
from forms.xlsform import compile_xlsform
from tests.exports.conftest import export_record
from tests.exports.test_checks import CONSTRAINTS, SCHEMA, records

LOCALES = Path(__file__).resolve().parents[2] / "server" / "web" / "app" / "src" / "locales"
BARE_FORM = """
| survey |
|  | type | name | label |
|  | integer | age | Age |
| settings |
|  | form_id |
|  | bare |
"""
BARE = read_xform(compile_xlsform(BARE_FORM.encode(), file_name="bare.md").xml)


def bare_record(n: int) -> ExportRecord:
    xml = f'<bare id="bare"><age>{n}</age><meta><instanceID>uuid:{n}</instanceID></meta></bare>'
    return export_record(BARE, xml.encode())


def test_each_check_that_cannot_run_names_its_reason_code() -> None:
    unknown = {**CONSTRAINTS, "/nowhere": ". > 1"}
    two = [bare_record(n) for n in range(2)]

    report = run_checks(SCHEMA, [records()], CheckSettings(), unknown)
    bare = run_checks(BARE, [two], CheckSettings(checks=("duplicate", "duration", "outlier")))

    reasons = {(n.check, n.field, n.reason) for n in report.not_evaluated}
    assert ("constraint", "/children", "constraint_not_evaluable") in reasons
    assert ("constraint", "/nowhere", "no_such_question") in reasons
    assert ("outlier", "/children", "no_spread") in reasons  # every returnee has one child
    assert {(n.check, n.reason) for n in bare.not_evaluated} == {
        ("duplicate", "no_duplicate_fields"),
        ("duration", "no_start_end"),
        ("outlier", "too_few_numbers"),
    }
    assert all(n.why for n in [*report.not_evaluated, *bare.not_evaluated])


def test_the_reason_codes_are_the_ones_the_web_app_translates() -> None:
    codes = set(typing.get_args(NotEvaluatedReason))
    for language in ("en", "sq", "sr"):
        messages = json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8"))
        assert set(messages["cleaning"]["notEvaluatedReasons"]) == codes, language
