"""GeoJSON Features of one batch, rendered by Polars.

Building each Feature as a Python dict and encoding it cost about 40 µs a row
(a million rows: most of the export's time). Here a batch's Features are one
Polars expression: the geopoint's "lat lon alt acc" text is parsed into
numbers, and each Feature is a struct JSON-encoded in Rust.

Polars and msgspec write the same JSON for strings, integers and nulls, and
the same shortest round-trip floats except above 1e16, where Polars writes
"1e+16" and msgspec "1e16". So a row is rendered in Polars only when it is
plainly the same: a geopoint written as plain decimal numbers, every float
below 1e16. Every other row (geotraces and geoshapes, exotic number forms,
huge numbers) is built per row in Python as before (`python_feature`), which
is also the reference the tests hold the Polars rows to, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import polars as pl

from exports.geojson_geometry import geometry_of

__all__ = ["RenderedBatch", "python_feature", "render_features"]

_encoder = msgspec.json.Encoder()
# ASCII whitespace, which Python's str.split() and Polars' casts both take as such.
_SPACE = r"[ \t\n\r\x0B\x0C]"
_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?)"
# One point, "lat lon" or "lat lon alt ..." (parts after the altitude are not read).
_PLAIN_POINT = (
    rf"^{_SPACE}*{_NUMBER}{_SPACE}+{_NUMBER}"
    rf"(?:{_SPACE}+{_NUMBER}(?:{_SPACE}[^;]*)?)?{_SPACE}*$"
)
# Floats at or above this magnitude are written differently by Polars and msgspec.
_FLOAT_LIMIT = 1e16


class RenderedBatch(msgspec.Struct, frozen=True):
    # The batch's Features as JSON, separated by ",\n" (empty when there are none).
    text: bytes
    features: int
    skipped: int


def python_feature(
    kind: str, geo: str, key: str | None, names: Sequence[str], row: Sequence[Any]
) -> bytes | None:
    """One Feature built in Python; None when its geo value cannot be read."""
    geometry = geometry_of(kind, geo)
    if geometry is None:
        return None
    feature = {
        "type": "Feature",
        "id": key,
        "geometry": geometry,
        "properties": dict(zip(names, row, strict=True)),
    }
    return _encoder.encode(feature)


def render_features(
    kind: str,
    geo: pl.Series,
    keys: pl.Series,
    properties: pl.DataFrame,
    float_columns: Sequence[str],
) -> RenderedBatch:
    """The Features of the rows whose geo value is not empty, in row order.

    `properties` has one column per property, already typed (strings, Int64
    and Float64 for the columns named in `float_columns`).
    """
    frame = properties.select(
        pl.struct(pl.all()).alias("properties"),
        _too_large(float_columns).alias("too_large"),
        geo.alias("geo"),
        keys.alias("key"),
    )
    present = frame.filter(pl.col("geo").is_not_null() & (pl.col("geo") != ""))
    if kind == "geopoint":
        point = pl.col("geo").str.extract_groups(_PLAIN_POINT)
        present = present.with_columns(
            point.struct.field("1").cast(pl.Float64).alias("lat"),
            point.struct.field("2").cast(pl.Float64).alias("lon"),
            point.struct.field("3").cast(pl.Float64).alias("alt"),
        )
        plain = pl.col("lat").is_not_null() & ~pl.col("too_large")
        plain = plain & ~(pl.col("alt").abs() >= _FLOAT_LIMIT).fill_null(False)
    else:
        present = present.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(name) for name in ("lat", "lon", "alt")
        )
        plain = pl.lit(False)
    readable = (
        pl.col("lat").is_between(-90, 90)
        & pl.col("lon").is_between(-180, 180)
        & (pl.col("alt").is_null() | pl.col("alt").is_finite())
    )
    rendered = present.select(
        pl.when(plain & readable).then(_feature_json()).alias("json"),
        (plain & ~readable).alias("unreadable"),
        plain.alias("plain"),
    )
    slow = present.filter(~rendered.get_column("plain"))
    texts = rendered.get_column("json")
    skipped = int(rendered.get_column("unreadable").sum())
    if slow.height:
        texts, slow_skipped = _with_python_rows(kind, texts, rendered, slow, properties.columns)
        skipped += slow_skipped
    features = texts.drop_nulls()
    if features.len() == 0:
        return RenderedBatch(text=b"", features=0, skipped=skipped)
    # As bytes straight from Polars: a Python str of non-ASCII text would be
    # decoded to wider characters and encoded back.
    text = features.str.join(",\n").cast(pl.Binary).item()
    return RenderedBatch(text=text, features=features.len(), skipped=skipped)


def _too_large(float_columns: Sequence[str]) -> pl.Expr:
    if not float_columns:
        return pl.lit(False)
    return pl.any_horizontal(
        (pl.col(name).abs() >= _FLOAT_LIMIT).fill_null(False) for name in float_columns
    )


def _feature_json() -> pl.Expr:
    coordinates = pl.concat_list("lon", "lat", "alt").list.drop_nulls()
    geometry = pl.struct(pl.lit("Point").alias("type"), coordinates.alias("coordinates"))
    feature = pl.struct(
        pl.lit("Feature").alias("type"),
        pl.col("key").alias("id"),
        geometry.alias("geometry"),
        pl.col("properties"),
    )
    return feature.struct.json_encode()


def _with_python_rows(
    kind: str,
    texts: pl.Series,
    rendered: pl.DataFrame,
    slow: pl.DataFrame,
    names: Sequence[str],
) -> tuple[pl.Series, int]:
    positions = rendered.with_row_index().filter(~pl.col("plain")).get_column("index")
    built: list[str | None] = []
    skipped = 0
    rows = slow.get_column("properties").struct.unnest().iter_rows()
    for geo, key, row in zip(slow.get_column("geo"), slow.get_column("key"), rows, strict=True):
        feature = python_feature(kind, geo, key, names, row)
        if feature is None:
            skipped += 1
        built.append(None if feature is None else feature.decode())
    return texts.scatter(positions, pl.Series(built, dtype=pl.String)), skipped
