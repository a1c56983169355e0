"""The analysis copy gives the writers exactly the tables the records give.

Records are written into a segment (Parquet bytes per table), read back, and
joined with their system columns; every writer must then produce what it
produces from the records themselves, for Central's golden forms and option sets.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl
import pytest

from exports import write_csv_zip, write_geojson, write_parquet_zip, write_root_csv, write_xlsx
from exports.analysis import CopiedBatch, CopiedRow, copy_plan, meta_frame, write_segment
from exports.analysis import segment as segment_module
from exports.options import ExportOptions
from exports.records import ExportRecord
from forms.schema import FormSchema
from tests.exports.survey import SCHEMA, farm_records
from tests.exports.test_golden_csv import (
    GOLDEN_FILES,
    OPTION_SETS,
    as_stored,
    assert_matches,
    golden_case,
    options_for,
    read_zip,
)


def copied(
    schema: FormSchema, records: Sequence[ExportRecord], *, edited: frozenset[int] = frozenset()
) -> CopiedBatch:
    """`records` (newest first, ids counting down) through a segment and back.

    The submissions at the positions in `edited` have a newer version than the
    segment holds, so they come from the row store beside it.
    """
    ids = list(range(len(records), 0, -1))
    plan = copy_plan(schema)
    segment = write_segment(
        plan,
        [
            CopiedRow(
                submission_id=sid,
                def_id=sid,
                instance_id=r.meta.instance_id,
                encrypted=r.meta.status is not None,
                record=r.record,
            )
            for sid, r in zip(ids, records, strict=True)
        ],
    )
    tables = {t.repeat_path: pl.read_parquet(io.BytesIO(segment[t.name])) for t in plan.tables}
    metas = [r.meta for r in records]
    meta = meta_frame(
        submission_ids=ids,
        def_ids=[sid + 1000 if i in edited else sid for i, sid in enumerate(ids)],
        instance_ids=[m.instance_id for m in metas],
        submitted_at=[m.submission_date for m in metas],
        submitter_ids=[m.submitter_id for m in metas],
        submitter_names=[m.submitter_name for m in metas],
        present=[m.attachments_present for m in metas],
        expected=[m.attachments_expected for m in metas],
        encrypted=[m.status is not None for m in metas],
        review_states=[m.review_state for m in metas],
        device_ids=[m.device_id for m in metas],
        edits=[m.edits for m in metas],
        form_versions=[m.form_version for m in metas],
    )
    missing = [(ids[i], records[i]) for i in sorted(edited)]
    return CopiedBatch(tables, meta, missing)


def zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize("query", OPTION_SETS)
@pytest.mark.parametrize("stem", GOLDEN_FILES)
def test_csv_zip_from_the_copy_is_byte_identical_and_matches_central(
    shared_dir: Path, stem: str, query: str
) -> None:
    golden, schema, records = golden_case(shared_dir, stem)
    records = as_stored(records)
    options = options_for(query)
    direct, from_copy = io.BytesIO(), io.BytesIO()

    write_csv_zip(schema, [records], direct, options)
    write_csv_zip(schema, [copied(schema, records)], from_copy, options)

    files = read_zip(from_copy.getvalue())
    assert files == read_zip(direct.getvalue())
    for name, table in golden["csv"][query].items():
        assert_matches(table, files[name])


@pytest.mark.parametrize("stem", GOLDEN_FILES)
def test_edited_submission_comes_from_the_row_store_in_its_place(
    shared_dir: Path, stem: str
) -> None:
    _golden, schema, records = golden_case(shared_dir, stem)
    direct, from_copy = io.BytesIO(), io.BytesIO()

    write_csv_zip(schema, [records], direct, ExportOptions())
    write_csv_zip(
        schema, [copied(schema, records, edited=frozenset({len(records) - 1}))], from_copy
    )

    assert read_zip(from_copy.getvalue()) == read_zip(direct.getvalue())


def test_deleted_or_filtered_submissions_are_left_out_by_the_join() -> None:
    schema, records = SCHEMA, farm_records()
    batch = copied(schema, records)
    kept = records[1:]
    # The same segment, but the first submission no longer selected.
    narrowed = CopiedBatch(batch._tables, batch._meta.slice(1), ())
    direct, from_copy = io.BytesIO(), io.BytesIO()

    write_root_csv(schema, [kept], direct)
    write_root_csv(schema, [narrowed], from_copy)

    assert from_copy.getvalue() == direct.getvalue()


Writer = Callable[[FormSchema, list[Sequence[ExportRecord]], io.BytesIO, ExportOptions], None]


def _xlsx(s: FormSchema, b: list[Sequence[ExportRecord]], o: io.BytesIO, x: ExportOptions) -> None:
    write_xlsx(s, b, o, x)


def _parquet(
    s: FormSchema, b: list[Sequence[ExportRecord]], o: io.BytesIO, x: ExportOptions
) -> None:
    write_parquet_zip(s, b, o, x)


def _geojson(
    s: FormSchema, b: list[Sequence[ExportRecord]], o: io.BytesIO, x: ExportOptions
) -> None:
    write_geojson(s, b, o, x)


@pytest.mark.parametrize("writer", [_xlsx, _parquet, _geojson], ids=["xlsx", "parquet", "geojson"])
@pytest.mark.parametrize(
    "options",
    [
        ExportOptions(),
        ExportOptions(labels=True, split_select_multiples=True, group_paths=False),
        ExportOptions(personal="pseudonymise", pseudonym_key=b"k"),
    ],
    ids=["default", "labels-split-flat", "pseudonymised"],
)
def test_other_formats_from_the_copy_hold_the_same_tables(
    writer: Writer, options: ExportOptions
) -> None:
    schema, records = SCHEMA, farm_records()
    direct, from_copy = io.BytesIO(), io.BytesIO()

    writer(schema, [records], direct, options)
    writer(schema, [copied(schema, records)], from_copy, options)

    if writer is _geojson:
        assert from_copy.getvalue() == direct.getvalue()
    elif writer is _parquet:
        got, want = zip_members(from_copy.getvalue()), zip_members(direct.getvalue())
        assert got.keys() == want.keys()
        for name in want:
            assert pl.read_parquet(io.BytesIO(got[name])).equals(
                pl.read_parquet(io.BytesIO(want[name]))
            )
    else:
        got, want = zip_members(from_copy.getvalue()), zip_members(direct.getvalue())
        assert {k: v for k, v in got.items() if "docProps" not in k} == {
            k: v for k, v in want.items() if "docProps" not in k
        }


@pytest.mark.parametrize("stem", GOLDEN_FILES)
def test_segment_written_in_chunks_keeps_every_row_in_place(
    shared_dir: Path, stem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _golden, schema, records = golden_case(shared_dir, stem)
    monkeypatch.setattr(segment_module, "_CHUNK", 1)
    direct, from_copy = io.BytesIO(), io.BytesIO()

    write_csv_zip(schema, [records], direct)
    write_csv_zip(schema, [copied(schema, records)], from_copy)

    assert read_zip(from_copy.getvalue()) == read_zip(direct.getvalue())
