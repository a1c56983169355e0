from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from forms import xlsform
from forms.xform import read_xform
from forms.xlsform import XlsFormError, compile_xlsform

PERSONAL_FORM = b"""
| survey |
|        | type          | name     | label        | personal |
|        | text          | full_name| Full name    | Yes      |
|        | integer       | age      | Age          |          |
|        | begin repeat  | member   | Member       |          |
|        | text          | phone    | Phone        | TRUE     |
|        | text          | role     | Role         | no       |
|        | end repeat    |          |              |          |
"""


def _xlsx(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_markdown_form_compiles_to_xform_with_fallback_form_id() -> None:
    result = compile_xlsform(PERSONAL_FORM, file_name="intake.md", form_id_fallback="intake")
    assert result.xml.startswith(b"<?xml")
    assert read_xform(result.xml).form_id == "intake"
    assert result.itemsets_csv is None


def test_settings_form_id_wins_over_fallback() -> None:
    form = PERSONAL_FORM + b"| settings |\n| | form_id | version |\n| | follow_up | 2024-05 |\n"
    schema = read_xform(compile_xlsform(form, file_name="x.md", form_id_fallback="x").xml)
    assert (schema.form_id, schema.version) == ("follow_up", "2024-05")


def test_form_id_defaults_to_data_without_fallback() -> None:
    assert read_xform(compile_xlsform(PERSONAL_FORM, file_name="x.md").xml).form_id == "data"


def test_personal_column_marks_fields_in_schema() -> None:
    result = compile_xlsform(PERSONAL_FORM, file_name="intake.md")
    assert b'xmlns:homeward="urn:homeward:xforms"' in result.xml
    assert b'homeward:personal="yes"' in result.xml
    personal = {f.path for f in read_xform(result.xml).fields if f.personal}
    assert personal == {"/full_name", "/member/phone"}


def test_personal_bind_column_written_by_author_also_works() -> None:
    form = b"""
| survey |
|        | type | name | label | bind::homeward:personal |
|        | text | id_number | ID number | yes |
|        | text | village | Village | |
| settings |
|          | form_id | namespaces |
|          | f | esri="http://esri.com/xforms" |
"""
    result = compile_xlsform(form, file_name="f.md")
    assert b'xmlns:esri="http://esri.com/xforms"' in result.xml
    assert [f.path for f in read_xform(result.xml).fields if f.personal] == ["/id_number"]


def test_error_names_sheet_and_row() -> None:
    form = b"""
| survey |
|        | type | name | label |
|        | text | q1   | One   |
|        | text | q1   | Two   |
"""
    with pytest.raises(XlsFormError) as caught:
        compile_xlsform(form, file_name="dup.md")
    assert str(caught.value).startswith("Sheet 'survey', row 3, column 'name': the value 'q1'")


def test_unclosed_group_names_row() -> None:
    form = b"""
| survey |
|        | type        | name | label |
|        | begin group | g    | G     |
|        | text        | q1   | One   |
"""
    with pytest.raises(XlsFormError, match=r"^Sheet 'survey', row 2: .*'g'"):
        compile_xlsform(form, file_name="group.md")


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, world", b"%PDF-1.7 not a spreadsheet", bytes(range(256)) * 4],
)
def test_garbage_bytes_are_rejected(data: bytes) -> None:
    with pytest.raises(XlsFormError, match="not a valid XLSForm"):
        compile_xlsform(data, file_name="form.xlsx")


def test_unknown_extension_is_rejected() -> None:
    with pytest.raises(XlsFormError, match="not a valid XLSForm"):
        compile_xlsform(b"type,name\ntext,a\n", file_name="form.txt")


def test_damaged_zip_is_rejected() -> None:
    data = _xlsx({"xl/workbook.xml": b"<workbook/>"})
    with pytest.raises(XlsFormError, match="not a valid XLSForm"):
        compile_xlsform(data[: len(data) // 2], file_name="form.xlsx")


def test_zip_that_is_not_a_workbook_is_rejected() -> None:
    with pytest.raises(XlsFormError, match="not a valid XLSForm"):
        compile_xlsform(_xlsx({"hello.txt": b"hi"}), file_name="form.xlsx")


def test_zip_bomb_by_compression_ratio_is_rejected() -> None:
    bomb = _xlsx({"xl/worksheets/sheet1.xml": b"\0" * (8 * 1024 * 1024)})
    assert len(bomb) < 50_000
    with pytest.raises(XlsFormError, match="zip bomb"):
        compile_xlsform(bomb, file_name="bomb.xlsx")


def test_zip_with_too_many_members_is_rejected() -> None:
    many = _xlsx({f"xl/part{i}.xml": b"<a/>" for i in range(2001)}, zipfile.ZIP_STORED)
    with pytest.raises(XlsFormError, match="2001 files"):
        compile_xlsform(many, file_name="many.xlsx")


def test_zip_unpacking_too_large_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsform, "MAX_UNCOMPRESSED_BYTES", 10_000)
    big = _xlsx({"xl/sharedStrings.xml": os.urandom(20_000)}, zipfile.ZIP_STORED)
    with pytest.raises(XlsFormError, match="unpacks to more than"):
        compile_xlsform(big, file_name="big.xlsx")


def test_legacy_xls_under_xlsx_name_converts(xlsform_corpus: Path) -> None:
    name = "odkcentral__ifrc-distribution-site-assessment-v1.xlsx"
    result = compile_xlsform((xlsform_corpus / name).read_bytes(), file_name=name)
    assert read_xform(result.xml).form_id == "distributionsite_assessment_v1_0"


def test_external_choices_produce_itemsets_csv(xlsform_corpus: Path) -> None:
    name = "onadata__external_choice_form_v1.xlsx"
    result = compile_xlsform((xlsform_corpus / name).read_bytes(), file_name=name)
    assert result.itemsets_csv is not None
    assert result.itemsets_csv.startswith(b'"list_name","name"')


def test_workbook_file_name_stem_is_not_used_without_fallback(xlsform_corpus: Path) -> None:
    name = "pyodk__pull_data.xlsx"
    result = compile_xlsform((xlsform_corpus / name).read_bytes(), file_name=name)
    assert read_xform(result.xml).form_id == "data"


def conversion_error(form: bytes) -> str:
    with pytest.raises(XlsFormError) as caught:
        compile_xlsform(form, file_name="form.md", form_id_fallback="form")
    return str(caught.value)


def test_unknown_list_names_its_place_and_the_list_meant() -> None:
    message = conversion_error(
        b"""
| survey  |
|         | type             | name   | label  |
|         | text             | name   | Name   |
|         | select_one gendr | gender | Gender |
| choices |
|         | list_name | name | label |
|         | gender    | f    | Female |
|         | gender    | m    | Male   |
"""
    )
    assert message == (
        "Sheet 'survey', row 3, column 'type': the list 'gendr' is not on the choices "
        "sheet (no row there has it as its list_name). Did you mean 'gender'?"
    )
    assert "has an error" not in message


def test_unknown_type_names_its_row_and_the_type_meant() -> None:
    message = conversion_error(
        b"""
| survey |
|        | type   | name | label |
|        | text   | name | Name  |
|        | integr | age  | Age   |
"""
    )
    assert message == (
        "Sheet 'survey', row 3, column 'type': Unknown question type 'integr'. "
        "Did you mean 'integer'?"
    )


def test_unknown_reference_suggests_the_question_meant() -> None:
    message = conversion_error(
        b"""
| survey |
|        | type | name      | label            |
|        | text | full_name | Name             |
|        | note | greeting  | Hello ${fullname} |
"""
    )
    assert message.startswith("Sheet 'survey', row 3, column 'label': the value is invalid.")
    assert message.endswith("Could not find the name 'fullname'. Did you mean 'full_name'?")


def test_nothing_close_means_no_suggestion() -> None:
    message = conversion_error(
        b"""
| survey |
|        | type           | name | label |
|        | zzzzzzzzzzzzzz | age  | Age   |
"""
    )
    assert (
        message == "Sheet 'survey', row 2, column 'type': Unknown question type 'zzzzzzzzzzzzzz'."
    )


def test_a_misspelt_header_is_named() -> None:
    message = conversion_error(
        b"""
| survey |
|        | typ  | name | label |
|        | text | age  | Age   |
"""
    )
    assert message.startswith("Sheet 'survey', row 1: ")
    assert "required column headers were not found: 'type'" in message
    assert message.endswith("Should the column 'typ' be 'type'?")
