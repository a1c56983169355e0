"""ODK geo answers as GeoJSON geometries, one value at a time (rules in exports.geojson).

Every geotrace and geoshape goes through here, and the geopoints that
exports.geojson_features does not render in Polars.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

__all__ = ["geometry_of"]

Position = list[float]


def geometry_of(kind: str, value: str) -> dict[str, Any] | None:
    """The GeoJSON geometry of an ODK geo answer, or None when it cannot be read."""
    positions = _positions(value)
    if positions is None:
        return None
    if kind == "geopoint":
        return {"type": "Point", "coordinates": positions[0]} if len(positions) == 1 else None
    if kind == "geotrace":
        return {"type": "LineString", "coordinates": positions} if len(positions) >= 2 else None
    if positions[0] != positions[-1]:
        positions.append(list(positions[0]))
    if len(positions) < 4:
        return None  # a ring needs three distinct corners
    area = _signed_area(positions)
    if area == 0:
        return None  # all corners on one line: no shape
    if area < 0:
        positions.reverse()  # RFC 7946: exterior rings counterclockwise
    return {"type": "Polygon", "coordinates": [positions]}


def _positions(value: str) -> list[Position] | None:
    points = [point.split() for point in value.split(";") if point.strip()]
    if not points:
        return None
    with_altitude = all(len(parts) >= 3 for parts in points)
    positions = []
    for parts in points:
        if len(parts) < 2:
            return None
        try:
            numbers = [float(part) for part in parts[: 3 if with_altitude else 2]]
        except ValueError:
            return None
        if not all(math.isfinite(n) for n in numbers):
            return None
        latitude, longitude = numbers[0], numbers[1]
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            return None
        positions.append([longitude, latitude, *numbers[2:]])
    return positions


def _signed_area(ring: list[Position]) -> float:
    # Shoelace formula in lon/lat axes: positive for a counterclockwise ring.
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(ring)) / 2
