"""Answers as Central's OData types: numbers read as JavaScript reads them, geometries.

Stored answers are text. Central converts them with JavaScript's ``parseInt`` and
``parseFloat`` and prints numbers the JavaScript way; geopoints, geotraces and
geoshapes become GeoJSON (or WKT with ``$wkt=true``) with longitude first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Convert", "converter"]

Convert = Callable[[str], Any]

# ASCII digits only: JavaScript's parseInt("٣") is NaN, though Python's int() reads it.
_INT = re.compile(r"\s*[+-]?\d+", re.ASCII)
_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)", re.ASCII)
_POINT_SPLIT = re.compile(r"; ?")


_SAFE_INTEGER = 9007199254740992.0  # 2**53, as a float: comparing a float with a big int is slow


def _js_number(value: float) -> float | int:
    """Numbers as JavaScript prints them: 512.0 is 512."""
    if value.is_integer() and -_SAFE_INTEGER < value < _SAFE_INTEGER:
        return int(value)
    return value


def _js_text(value: float | int) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _int(text: str) -> int | None:
    """JavaScript's parseInt: the leading digits, if any."""
    if text.isdigit() and text.isascii():  # "²" is a digit that int() refuses
        return int(text)
    match = _INT.match(text)
    return int(match.group()) if match else None


def _float(text: str) -> float | None:
    """JavaScript's parseFloat: the leading number, if any."""
    if not text.isascii():
        match = _FLOAT.match(text)
        return float(match.group()) if match else None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        # Python also reads "1_000", "nan" and "inf"; JavaScript stops earlier.
        if math.isfinite(value) and "_" not in text:
            return value
    match = _FLOAT.match(text)
    return float(match.group()) if match else None


def _decimal(text: str) -> float | int | None:
    # The common case (plain ASCII, finite) in one call, for its thousands per page.
    if text.isascii() and "_" not in text:
        try:
            value = float(text)
        except ValueError:
            pass
        else:
            if value - value == 0.0:  # finite: nan and inf give nan
                if value.is_integer() and -_SAFE_INTEGER < value < _SAFE_INTEGER:
                    return int(value)
                return value
    parsed = _float(text)
    return None if parsed is None else _js_number(parsed)


def _date_time(text: str) -> str:
    trimmed = text.strip()
    # Collect may write "+07" as the offset; OData wants "+07:00".
    if len(trimmed) > 3 and trimmed[-3] in "+-" and trimmed[-2:].isdigit():
        return f"{trimmed}:00"
    return trimmed


def _numbers(text: str) -> list[float | None]:
    parts = text.split()
    if "_" not in text and text.isascii():
        # The common case, plain numbers, in one pass; _float handles the rest.
        try:
            values: list[float | None] = [float(part) for part in parts]
        except ValueError:
            pass
        else:
            if all(map(math.isfinite, values)):  # type: ignore[arg-type]
                return values
    return [_float(part) for part in parts]


def _geopoint(text: str, wkt: bool) -> Any:
    if not wkt and text.isascii() and "_" not in text:
        parts = text.split()
        if 2 <= len(parts) <= 4:
            try:
                values = [float(part) for part in parts]
            except ValueError:
                pass
            else:
                if all(value - value == 0.0 for value in values):
                    return _point(values)
    numbers = _numbers(text)
    if len(numbers) < 2 or numbers[0] is None or numbers[1] is None:
        return None
    coordinates = [_js_number(numbers[1]), _js_number(numbers[0])]
    altitude = numbers[2] if len(numbers) > 2 else None
    if altitude is not None:
        coordinates.append(_js_number(altitude))
    if wkt:
        return f"POINT ({' '.join(_js_text(c) for c in coordinates)})"
    point: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
    accuracy = numbers[3] if len(numbers) > 3 else None
    if accuracy is not None:
        point["properties"] = {"accuracy": _js_number(accuracy)}
    return point


def _point(values: list[float]) -> dict[str, Any]:
    """A GeoJSON point from finite latitude, longitude[, altitude[, accuracy]]."""
    numbers = [
        int(value) if value.is_integer() and -_SAFE_INTEGER < value < _SAFE_INTEGER else value
        for value in values
    ]
    point: dict[str, Any] = {
        "type": "Point",
        "coordinates": [numbers[1], numbers[0], *numbers[2:3]],
    }
    if len(numbers) > 3:
        point["properties"] = {"accuracy": numbers[3]}
    return point


def _geo_line(text: str, kind: str, wkt: bool) -> Any:
    points: list[list[float | int]] = []
    accuracies: list[float | int | None] = []
    for part in _POINT_SPLIT.split(text):
        numbers = _numbers(part)
        if len(numbers) < 2 or numbers[0] is None or numbers[1] is None:
            continue  # most likely a trailing ";"
        point = [_js_number(numbers[1]), _js_number(numbers[0])]
        if len(numbers) > 2 and numbers[2] is not None:
            point.append(_js_number(numbers[2]))
        points.append(point)
        accuracy = numbers[3] if len(numbers) > 3 else None
        accuracies.append(_js_number(accuracy) if accuracy else None)
    if wkt:
        joined = ",".join(" ".join(_js_text(c) for c in point) for point in points)
        return f"LINESTRING ({joined})" if kind == "geotrace" else f"POLYGON (({joined}))"
    shape: dict[str, Any] = (
        {"type": "LineString", "coordinates": points}
        if kind == "geotrace"
        else {"type": "Polygon", "coordinates": [points]}
    )
    if any(accuracy is not None for accuracy in accuracies):
        shape["properties"] = {"accuracies": accuracies}
    return shape


def converter(kind: str, wkt: bool) -> Convert | None:
    """How a field of this kind is written; None for text as it came."""
    if kind == "int":
        return _int
    if kind == "decimal":
        return _decimal
    if kind == "dateTime":
        return _date_time
    if kind == "geopoint":
        return lambda text: _geopoint(text, wkt)
    if kind in ("geotrace", "geoshape"):
        return lambda text: _geo_line(text, kind, wkt)
    return None  # text as it came
