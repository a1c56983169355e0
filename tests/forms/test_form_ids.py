"""Form ids: what Central refuses, what Homeward adds, and everything else accepted."""

from __future__ import annotations

import pytest

from forms.form_ids import MAX_FORM_ID_LENGTH, form_id_problem


@pytest.mark.parametrize(
    "form_id",
    ["intake", "'=+/*-451%/%", "✅", "a/b", "%2F", 'it\'s "quoted"', "a b", "x.svc", ".hidden"],
)
def test_ids_pyxform_and_central_accept_are_accepted(form_id: str) -> None:
    assert form_id_problem(form_id) is None


@pytest.mark.parametrize(
    ("form_id", "reason"),
    [
        ("", "needs an id"),
        ("   ", "needs an id"),
        ("form.xls", "cannot end in .xls"),
        ("form.xlsx", "cannot end in .xls"),
        ("form.xml", "cannot end in .xls"),
        ("a\tb", "control character"),
        ("a\x00b", "control character"),
        ("a\x85b", "control character"),
        (".", "only dots"),
        ("..", "only dots"),
        ("x ", "space"),
        ("x" * (MAX_FORM_ID_LENGTH + 1), "longer than"),
    ],
)
def test_ids_that_cannot_be_addressed_are_refused_with_a_reason(form_id: str, reason: str) -> None:
    problem = form_id_problem(form_id)
    assert problem is not None
    assert reason in problem
