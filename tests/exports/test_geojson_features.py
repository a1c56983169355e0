"""Features rendered by Polars are byte for byte those built one row at a time in Python."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exports.geojson_features import RenderedBatch, render_features
from exports.geojson_geometry import geometry_of

# Every character JSON must escape, and a few it must not.
TEXTS = [
    "plain",
    "",
    None,
    'He said "hi"',
    "back\\slash \\u0041",
    "".join(chr(c) for c in range(32)) + "\x7f",
    "line one\nline two\r\nline three\ttab",
    "Shqipëri, Србија, 日本, \U0001f30d, \u2028\u2029, \u202eevil\u202c, \ufeff",
    "=cmd|' /C calc'!A0",
    "1e+16",
]
GEOPOINTS = [
    "45.658494 19.781591 299.6 4.5",  # lat lon alt acc
    "-1.286 36.817",  # no altitude
    "-1.286 36.817 1600",  # no accuracy
    "  10\t20 \n",  # ASCII whitespace around and between
    "10 20 30 4.5 extra parts",  # parts after the accuracy are not read
    "-0 -0 -0 0",  # negative zeros
    "007.50 0180 -00.0",  # leading zeros
    "90 180",
    "-90 -180 -12.5",
    "90.0000001 10",  # latitude out of range: skipped
    "10 -180.5",  # longitude out of range: skipped
    "1" * 400 + " 10",  # infinite: skipped
    "10 20 " + "9" * 400,  # infinite altitude: skipped
    "10 20 1e16 3",  # huge altitude, written by Python
    "10 20 12345678901234567 3",  # huge altitude as digits
    "10 20 abc 3",  # unreadable altitude: skipped
    "+1 2",  # forms only Python reads the same way
    "1. .5",
    "1_0 2",
    "1e1 2e0",
    "\u0661 2",  # an Arabic-Indic digit
    "10\u00a020",  # a no-break space
    "10 20\x1c30",  # a separator Python's split() takes as whitespace
    "10 20;",
    ";10 20",
    "10 20;30 40",  # two points: no geopoint
    ";",
    " ",
    "abc def",
    "12.5",
    "nan 10",
    "inf 10",
    "",
    None,
]
SHAPES = [
    "0 0 0 0;0 1 0 0;1 1 0 0;1 0 0 0;0 0 0 0",
    "1 1;1 2;2 2",
    "0 0;0 1;0 2",
    "-1.2860 36.8170 1600 5;-1.2870 36.8180 1601 5",
    "1 2;x y",
    "",
    None,
]
FLOATS = [1.5, None, -0.0, 1e-7, 1e15, 1e16, -2.5e20, 123.456, 0.1 + 0.2, 5e-324]
INTS = [34, None, 0, -7, 2**62, 1]

_encoder = msgspec.json.Encoder()


def oracle(
    kind: str, geo: Sequence[str | None], keys: Sequence[str | None], properties: pl.DataFrame
) -> RenderedBatch:
    """What the writer wrote before Polars rendered Features: one dict per row."""
    names = properties.columns
    chunks, skipped = [], 0
    for value, key, row in zip(geo, keys, properties.iter_rows(), strict=True):
        if not value:
            continue
        geometry = geometry_of(kind, value)
        if geometry is None:
            skipped += 1
            continue
        feature = {
            "type": "Feature",
            "id": key,
            "geometry": geometry,
            "properties": dict(zip(names, row, strict=True)),
        }
        chunks.append(_encoder.encode(feature))
    return RenderedBatch(text=b",\n".join(chunks), features=len(chunks), skipped=skipped)


def cycle(values: Sequence[Any], n: int, step: int) -> list[Any]:
    return [values[(i * step) % len(values)] for i in range(n)]


def varied(n: int) -> tuple[list[str | None], pl.DataFrame]:
    keys: list[str | None] = [f"uuid:{i}" for i in range(n)]
    keys[1] = 'uuid:"quoted"\\é'
    keys[2] = None
    properties = pl.DataFrame(
        {
            "KEY": keys,
            "name": cycle(TEXTS, n, 1),
            'odd "name"\\\n é': cycle(TEXTS, n, 3),
            "age": pl.Series(cycle(INTS, n, 1), dtype=pl.Int64),
            "weight": pl.Series(cycle(FLOATS, n, 1), dtype=pl.Float64),
            "home-Altitude": pl.Series(cycle(FLOATS, n, 7), dtype=pl.Float64),
            "fruits/apple": pl.Series(cycle([1, 0, None], n, 1), dtype=pl.Int64),
        }
    )
    return keys, properties


FLOAT_COLUMNS = ["weight", "home-Altitude"]


@pytest.mark.parametrize(
    ("kind", "values"),
    [("geopoint", GEOPOINTS), ("geotrace", SHAPES), ("geoshape", SHAPES)],
)
def test_polars_features_are_the_per_row_features(kind: str, values: list[str | None]) -> None:
    n = len(values) * len(TEXTS)
    geo = cycle(values, n, 1)
    keys, properties = varied(n)

    rendered = render_features(
        kind, pl.Series("geo", geo, dtype=pl.String), pl.Series(keys), properties, FLOAT_COLUMNS
    )

    expected = oracle(kind, geo, keys, properties)
    assert rendered == expected
    assert rendered.features > 0
    json.loads(b"[" + rendered.text + b"]")


def test_a_batch_without_features_is_empty() -> None:
    keys, properties = varied(3)
    geo = pl.Series("geo", ["", None, "91 0"], dtype=pl.String)

    rendered = render_features("geopoint", geo, pl.Series(keys), properties, FLOAT_COLUMNS)

    assert rendered == RenderedBatch(text=b"", features=0, skipped=1)


POINT_PART = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=7).map(str),
    st.integers(-200, 200).map(str),
    st.text(alphabet="0123456789.-+e ", max_size=6),
)


@given(
    rows=st.lists(
        st.tuples(
            st.one_of(
                st.none(),
                st.lists(POINT_PART, min_size=1, max_size=5).map(" ".join),
                st.text(max_size=12),
            ),
            st.one_of(st.none(), st.text()),
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        ),
        min_size=1,
        max_size=30,
    )
)
@settings(max_examples=200, deadline=None)
def test_any_values_render_as_the_per_row_features(
    rows: list[tuple[str | None, str | None, float | None, int | None]],
) -> None:
    geo = [row[0] for row in rows]
    keys = [f"k{i}" for i in range(len(rows))]
    properties = pl.DataFrame(
        {
            "KEY": keys,
            "text": pl.Series([row[1] for row in rows], dtype=pl.String),
            "number": pl.Series([row[2] for row in rows], dtype=pl.Float64),
            "count": pl.Series([row[3] for row in rows], dtype=pl.Int64),
        }
    )

    rendered = render_features(
        "geopoint", pl.Series("geo", geo, dtype=pl.String), pl.Series(keys), properties, ["number"]
    )

    assert rendered == oracle("geopoint", geo, keys, properties)
