"""Who is due for a follow-up: the programme's waves (3, 6 and 12 months after
return) worked out from each returnee's entity, so a counsellor sees whom to
call this week without exporting anything.

The schedule reads only the list's own properties (`return_date`,
`last_contact`, `last_wave`, `status`), which every follow-up updates: the
answer is as fresh as the case list on the phones.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Dataset, EntityRow
from server.services.entities import decode_data
from server.services.personal import EntityView

# The programme's waves, in order, with their distance from the date of return.
WAVES: tuple[tuple[str, int], ...] = (("month_3", 3), ("month_6", 6), ("month_12", 12))
DUE_SOON_DAYS = 7


@dataclass(frozen=True, slots=True)
class DueCase:
    uuid: str
    label: str
    case_id: str | None
    municipality: str | None
    counsellor: str | None
    status: str | None
    last_wave: str | None
    last_contact: str | None
    return_date: str | None
    next_wave: str
    due_date: str
    # overdue | week (due within DUE_SOON_DAYS) | later
    bucket: str


def add_months(start: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def next_wave(last_wave: str | None) -> tuple[str, int] | None:
    """The wave after `last_wave` (the first when none was recorded); None when done."""
    names = [name for name, _ in WAVES]
    if not last_wave:
        return WAVES[0]
    if last_wave not in names:
        return WAVES[0]
    position = names.index(last_wave) + 1
    return WAVES[position] if position < len(WAVES) else None


def bucket_of(due: date, today: date) -> str:
    if due < today:
        return "overdue"
    if due <= today + timedelta(days=DUE_SOON_DAYS):
        return "week"
    return "later"


def schedule_case(
    uuid: str, label: str, properties: dict[str, str], created: date, today: date
) -> DueCase | None:
    """One returnee's next follow-up, or None when the 12-month wave is done.

    The waves count from the date of return; a returnee registered without one
    counts from the last contact, then from registration.
    """
    wave = next_wave(properties.get("last_wave"))
    if wave is None:
        return None
    start = (
        _parse_date(properties.get("return_date"))
        or _parse_date(properties.get("last_contact"))
        or created
    )
    due = add_months(start, wave[1])
    return DueCase(
        uuid=uuid,
        label=label,
        case_id=properties.get("case_id") or None,
        municipality=properties.get("municipality") or None,
        counsellor=properties.get("counsellor") or None,
        status=properties.get("status") or None,
        last_wave=properties.get("last_wave") or None,
        last_contact=properties.get("last_contact") or None,
        return_date=properties.get("return_date") or None,
        next_wave=wave[0],
        due_date=due.isoformat(),
        bucket=bucket_of(due, today),
    )


async def due_cases(
    db: AsyncSession, dataset: Dataset, view: EntityView, today: date
) -> list[DueCase]:
    """Every live entity's next follow-up, soonest (most overdue) first."""
    rows = await db.execute(
        select(EntityRow.uuid, EntityRow.label, EntityRow.data, EntityRow.created_at).where(
            EntityRow.dataset_id == dataset.id, EntityRow.deleted_at.is_(None)
        )
    )
    found = []
    for uuid, label, data, created_at in rows:
        properties = view.data(decode_data(data))
        case = schedule_case(uuid, label, properties, created_at.date(), today)
        if case is not None:
            found.append(case)
    found.sort(key=lambda c: (c.due_date, c.label))
    return found
