"""The GeoJSON writer: choice of table and question, geometries, properties, errors."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exports.geojson import GeoJsonSummary, geometry_of, write_geojson
from exports.options import ExportError, ExportOptions, PersonalMode
from exports.records import ExportRecord
from exports.tabulate import pseudonym
from tests.exports.conftest import export_record, schema_from_markdown
from tests.exports.survey import (
    HOSTILE,
    SCHEMA,
    farm_records,
    farm_xml,
)

KEY = b"k" * 32


def ring_area(ring: list[list[float]]) -> float:
    """Signed area (positive: counterclockwise), by the surveyor's formula."""
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(ring)) / 2


def check_rfc7946(collection: dict[str, Any]) -> None:
    """The structure QGIS and RFC 7946 expect: lon/lat ranges, closed ccw rings."""
    assert collection["type"] == "FeatureCollection"
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert isinstance(feature["properties"], dict)
        geometry = feature["geometry"]
        kind, coordinates = geometry["type"], geometry["coordinates"]
        if kind == "Point":
            positions = [coordinates]
        elif kind == "LineString":
            assert len(coordinates) >= 2
            positions = coordinates
        else:
            assert kind == "Polygon"
            ring = coordinates[0]
            assert len(ring) >= 4
            assert ring[0] == ring[-1]
            assert ring_area(ring) > 0
            positions = ring
        for position in positions:
            assert 2 <= len(position) <= 3
            assert -180 <= position[0] <= 180
            assert -90 <= position[1] <= 90


def geojson(
    records: list[ExportRecord] | Iterator[list[ExportRecord]],
    options: ExportOptions | None = None,
    *,
    table: str | None = None,
    geo_field: str | None = None,
) -> tuple[dict[str, Any], GeoJsonSummary]:
    out = io.BytesIO()
    batches = records if isinstance(records, Iterator) else iter([records[:1], records[1:]])
    summary = write_geojson(
        SCHEMA, batches, out, options or ExportOptions(), table=table, geo_field=geo_field
    )
    collection = json.loads(out.getvalue())
    check_rfc7946(collection)
    return collection, summary


def test_default_is_the_roots_first_geo_question_as_points() -> None:
    collection, summary = geojson(farm_records())

    assert summary == GeoJsonSummary(table="farm", geo_field="/home", features=1, skipped=0)
    [feature] = collection["features"]
    assert feature["id"] == "uuid:a"
    # "lat lon alt acc" -> [lon, lat, alt]
    assert feature["geometry"] == {"type": "Point", "coordinates": [36.817, -1.286, 1600.5]}
    properties = feature["properties"]
    # Accuracy has no place in a position, altitude only sometimes: both are properties.
    assert properties["home-Accuracy"] == 4.2
    assert properties["home-Altitude"] == 1600.5
    assert not {"home", "home-Latitude", "home-Longitude"} & set(properties)
    assert properties["KEY"] == "uuid:a"
    assert properties["age"] == 34
    assert properties["weight"] == -61.5
    assert properties["name"] == "Arta Hoxha"
    assert properties["seen"] == "2026-08-01T10:30:00.250+03:00"
    assert properties["fruits"] == "apple big_fig"
    assert properties["SubmissionDate"] == "2026-08-01T10:00:00.000Z"
    assert properties["Edits"] == 0


def test_a_repeats_shapes_become_closed_counterclockwise_polygons() -> None:
    collection, summary = geojson(farm_records(), table="farm-plot")

    assert summary == GeoJsonSummary(
        table="farm-plot", geo_field="/plot/boundary", features=2, skipped=0
    )
    first, second = collection["features"]
    assert first["id"] == "uuid:a/plot[1]"
    assert first["properties"]["PARENT_KEY"] == "uuid:a"
    assert first["properties"]["crop"] == "maize"
    assert "boundary" not in first["properties"]
    assert first["geometry"]["coordinates"] == [
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]]
    ]
    # "1 1;1 2;2 2": the phone did not close the ring.
    assert second["geometry"] == {
        "type": "Polygon",
        "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]],
    }


def test_traces_become_linestrings_and_unreadable_ones_are_skipped_and_counted() -> None:
    collection, summary = geojson(farm_records(), geo_field="path")

    assert summary == GeoJsonSummary(
        table="farm-plot", geo_field="/plot/path", features=1, skipped=1
    )
    [feature] = collection["features"]
    assert feature["geometry"] == {
        "type": "LineString",
        "coordinates": [[36.817, -1.286, 1600], [36.818, -1.287, 1601]],
    }


def test_a_clockwise_ring_is_turned_around() -> None:
    geometry = geometry_of("geoshape", "0 0;1 0;1 1;0 1;0 0")

    assert geometry is not None
    ring = geometry["coordinates"][0]
    assert ring_area(ring) > 0
    assert sorted(map(tuple, ring)) == sorted([(0, 0), (0, 1), (1, 1), (1, 0), (0, 0)])


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("geopoint", "abc def"),
        ("geopoint", "12.5"),
        ("geopoint", "91 10"),
        ("geopoint", "10 181"),
        ("geopoint", "nan 10"),
        ("geopoint", "1 2;3 4"),
        ("geopoint", ";"),
        ("geotrace", "1 2 0 0"),
        ("geotrace", "1 2;x y"),
        ("geoshape", "1 2;3 4;1 2"),
        ("geoshape", "0 0;0 1;0 2"),
        ("geoshape", "5 5;5 5;5 5;5 5"),
    ],
)
def test_malformed_values_have_no_geometry(kind: str, value: str) -> None:
    assert geometry_of(kind, value) is None


def test_altitude_is_kept_only_when_every_point_has_one() -> None:
    assert geometry_of("geotrace", "1 2 30;3 4") == {
        "type": "LineString",
        "coordinates": [[2.0, 1.0], [4.0, 3.0]],
    }


def test_properties_follow_the_options() -> None:
    options = ExportOptions(
        labels=True,
        language="French (fr)",
        split_select_multiples=True,
        personal="pseudonymise",
        pseudonym_key=KEY,
    )
    collection, _ = geojson(farm_records(), options)

    properties = collection["features"][0]["properties"]
    assert properties["fruits"] == "Pomme; Grosse figue"
    assert (properties["fruits/apple"], properties["fruits/pear"]) == (1, 0)
    assert properties["name"] == pseudonym(KEY, "Arta Hoxha")


def test_numbers_that_are_not_numbers_are_null() -> None:
    record = export_record(SCHEMA, farm_xml("uuid:n", age="abc", home="1 2"))

    collection, _ = geojson([record])

    assert collection["features"][0]["properties"]["age"] is None


@pytest.mark.parametrize("escape", [True, False])
def test_hostile_text_is_written_as_collected_whatever_the_csv_guard(escape: bool) -> None:
    records = [
        export_record(SCHEMA, farm_xml(f"uuid:h{i}", name=text, home="1 2"))
        for i, text in enumerate(HOSTILE)
    ]
    collection, _ = geojson(records, ExportOptions(escape_formulas=escape))

    names = [feature["properties"]["name"] for feature in collection["features"]]
    assert names == HOSTILE


def test_features_stream_across_batches_with_and_without_locations() -> None:
    def batches() -> Iterator[list[ExportRecord]]:
        for n in range(6):
            home = f"{n} {n}" if n % 3 else ""
            yield [export_record(SCHEMA, farm_xml(f"uuid:s{n}", home=home))]
        yield []

    collection, summary = geojson(batches())

    assert [f["id"] for f in collection["features"]] == ["uuid:s1", "uuid:s2", "uuid:s4", "uuid:s5"]
    assert summary.features == 4


def test_no_submissions_is_an_empty_collection() -> None:
    collection, summary = geojson([])

    assert collection == {"type": "FeatureCollection", "features": []}
    assert summary.features == 0


PERSONAL_GEO = """
| survey |
|        | type     | name   | label  | personal |
|        | geopoint | house  | House  | yes      |
|        | geopoint | market | Market |          |
| settings |
|          | form_id |
|          | visits  |
"""
NO_GEO = """
| survey |
|        | type | name | label |
|        | text | note | Note  |
"""


def test_a_personal_geo_question_that_is_dropped_cannot_be_mapped() -> None:
    schema = schema_from_markdown(PERSONAL_GEO, "visits")
    record = export_record(
        schema,
        b'<visits id="visits"><house>1 2</house><market>3 4</market>'
        b"<meta><instanceID>uuid:p</instanceID></meta></visits>",
    )
    out = io.BytesIO()

    modes: tuple[PersonalMode, ...] = ("drop", "pseudonymise")
    for personal in modes:
        options = ExportOptions(personal=personal, pseudonym_key=KEY)
        with pytest.raises(ExportError, match='"/house" is personal data'):
            write_geojson(schema, [[record]], out, options, geo_field="house")
    assert out.getvalue() == b""
    # The default then maps the next geo question.
    summary = write_geojson(schema, [[record]], out, ExportOptions(personal="drop"))
    collection = json.loads(out.getvalue())
    assert summary.geo_field == "/market"
    assert collection["features"][0]["geometry"]["coordinates"] == [4.0, 3.0]
    assert "house-Latitude" not in collection["features"][0]["properties"]


@pytest.mark.parametrize(
    ("table", "geo_field", "message"),
    [
        ("farm-plots", None, 'no table "farm-plots"; its tables are: farm, farm-plot'),
        (None, "crop", 'no geo question "crop"'),
        ("farm", "path", 'table "farm" has no geo question "path"'),
    ],
)
def test_unknown_names_are_explained(
    table: str | None, geo_field: str | None, message: str
) -> None:
    with pytest.raises(ExportError, match=message):
        write_geojson(SCHEMA, [], io.BytesIO(), table=table, geo_field=geo_field)


def test_a_form_without_geo_questions_is_explained() -> None:
    schema = schema_from_markdown(NO_GEO)

    with pytest.raises(ExportError, match="no geopoint, geotrace or geoshape"):
        write_geojson(schema, [], io.BytesIO())


@given(
    kind=st.sampled_from(["geopoint", "geotrace", "geoshape"]),
    value=st.one_of(
        st.text(),
        st.lists(
            st.lists(
                st.one_of(st.floats(), st.integers().map(str), st.text(max_size=4)),
                max_size=5,
            ).map(lambda parts: " ".join(map(str, parts))),
            max_size=6,
        ).map(";".join),
    ),
)
@settings(max_examples=300, deadline=None)
def test_any_text_gives_a_valid_geometry_or_none(kind: str, value: str) -> None:
    geometry = geometry_of(kind, value)

    if geometry is not None:
        feature = {"type": "Feature", "geometry": geometry, "properties": {}}
        check_rfc7946({"type": "FeatureCollection", "features": [feature]})
        json.dumps(geometry, allow_nan=False)
