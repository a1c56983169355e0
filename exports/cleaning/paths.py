"""Field paths of the cleaning log: "/plot[2]/crop", a repeat instance's 1-based index
as in the export's KEY."""

from __future__ import annotations

import re

__all__ = ["CleaningError", "Step", "field_steps"]

Step = tuple[str, int | None]
_STEP = re.compile(r"^([^\s/\[\]]+)(?:\[([1-9][0-9]*)\])?$")


class CleaningError(ValueError):
    """An entry that cannot be made; the message says why in plain words."""


def field_steps(field: str) -> list[Step]:
    """ "/plot[2]/crop" -> [("plot", 2), ("crop", None)]; CleaningError if unreadable."""
    text = field.strip()
    if not text.startswith("/"):
        text = "/" + text
    steps: list[Step] = []
    for part in text[1:].split("/"):
        match = _STEP.match(part)
        if match is None:
            raise CleaningError(f'"{field}" is not a field path such as /age or /plot[2]/crop')
        name, index = match.groups()
        steps.append((name, int(index) if index else None))
    return steps
