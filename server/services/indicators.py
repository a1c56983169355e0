"""The programme's indicators: returnees registered by country, municipality and
gender, follow-ups by wave, and both by month, counted from the intake and
follow-up submissions as they stand (current versions, not deleted, no drafts).

Records are read in batches and only counted, so memory stays flat however
many submissions there are. A breakdown by a field that is personal for the
caller is left out rather than counted (small counts of personal answers can
name a person).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forms.schema import FormSchema
from forms.submission import answers_at
from server.db.models import Form, FormDef, Submission, SubmissionDef
from server.services.forms import schema_of
from server.services.personal import PersonalView

_decode_record = msgspec.json.Decoder(dict[str, object]).decode
_BATCH = 500
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Counts of one question's answers, and its choices' labels by language."""

    name: str
    path: str
    counts: dict[str, int] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    withheld: bool = False


# The programme forms' questions the indicators count (forms/programme/README.md).
INTAKE_BREAKDOWNS: Mapping[str, str] = {
    "country": "/registration/return_info/country_return",
    "municipality": "/registration/return_info/municipality",
    "gender": "/registration/person/sex",
}
INTAKE_DATE = "/today"
FOLLOW_UP_BREAKDOWNS: Mapping[str, str] = {"wave": "/wave"}
FOLLOW_UP_DATES = ("/interview_date", "/today")


@dataclass(slots=True)
class FormCounts:
    xml_form_id: str
    total: int = 0
    breakdowns: list[Breakdown] = field(default_factory=list)
    by_month: Counter[str] = field(default_factory=Counter)


def _first_text(record: dict[str, object], path: str) -> str | None:
    for value in answers_at(record, path):
        if isinstance(value, str) and value:
            return value
    return None


def choice_labels(schema: FormSchema, path: str) -> dict[str, dict[str, str]]:
    found = next((f for f in schema.fields if f.path == path), None)
    if found is None or found.choice_list is None:
        return {}
    return {c.name: dict(c.labels) for c in schema.choices.get(found.choice_list, [])}


async def count_form(
    db: AsyncSession,
    form: Form,
    view: PersonalView,
    breakdowns: Mapping[str, str],
    date_paths: tuple[str, ...],
) -> FormCounts:
    """One form's submissions counted by each breakdown's answer and by month."""
    schema = None
    if form.current_def_id is not None:
        current = await db.get(FormDef, form.current_def_id)
        schema = schema_of(current) if current is not None else None
    counted = FormCounts(form.xml_form_id)
    counters: dict[str, Counter[str]] = {name: Counter() for name in breakdowns}
    withheld = {
        name for name, path in breakdowns.items() if view.masked and view.fields.covers(path)
    }
    result = await db.stream(
        select(SubmissionDef.record, Submission.created_at)
        .join(Submission, Submission.id == SubmissionDef.submission_id)
        .where(
            Submission.form_id == form.id,
            Submission.draft.is_(False),
            Submission.deleted_at.is_(None),
            SubmissionDef.current.is_(True),
            SubmissionDef.encrypted.is_(False),
        )
        .execution_options(yield_per=_BATCH)
    )
    async for stored, created_at in result:
        record = _decode_record(stored) if stored else {}
        counted.total += 1
        for name, path in breakdowns.items():
            if name not in withheld:
                counters[name][_first_text(record, path) or ""] += 1
        when = next(
            (d for p in date_paths if _MONTH.match(d := _first_text(record, p) or "")), None
        )
        counted.by_month[(when or created_at.date().isoformat())[:7]] += 1
    counted.breakdowns = [
        Breakdown(
            name,
            path,
            dict(counters[name].most_common()),
            choice_labels(schema, path) if schema is not None else {},
            name in withheld,
        )
        for name, path in breakdowns.items()
    ]
    return counted


def months_between(first: str, last: str) -> list[str]:
    """Every "YYYY-MM" from first to last, so a line over time has no silent gaps."""
    year, month = int(first[:4]), int(first[5:7])
    found = []
    while f"{year:04d}-{month:02d}" <= last:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found
