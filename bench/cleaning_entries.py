"""Cleaning-log entries for the export benchmark (`python -m bench.exports --cleaned`).

Entries are written through the service the API's POST .../cleaning-log uses
(`server.services.cleaning.add_entries`: each checked against the form, its old
value read from the stored submission), in transactions of `_CHUNK`, as an
analyst's CSV uploads would write them. They are spread as a cleaning log is:
numbers and text, root questions and the household roster's rows, a few
corrected locations, now and then a second entry for an answer already
cleaned (the later one wins), and about one in fifty removes a submission (a
duplicate). Seeded, so a kept database gets the same log every time.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from bench.forms import FORM_ID, MEMBERS
from bench.ingest import SECRET_KEY, Backend

__all__ = ["entry_count", "write_entries"]

_CHUNK = 1_000
_SEED = 20261206
_WORDS = ("Arta", "Besa", "Driton", "Ilir", "Mira", "Valbona", "Krasniqi", "Hoxha", "Gashi")


def entry_count(spec: str, submissions: int) -> int:
    """ "10000" -> 10,000 entries; "1%" -> 1% of the submissions."""
    if spec.endswith("%"):
        return round(submissions * float(spec[:-1]) / 100)
    return int(spec)


def _number(low: int, high: int) -> Callable[[random.Random], str]:
    return lambda rng: str(rng.randint(low, high))


def _amount(rng: random.Random) -> str:
    return f"{rng.uniform(0, 2000):.2f}"


def _name(rng: random.Random) -> str:
    return " ".join(rng.sample(_WORDS, 2))


def _location(rng: random.Random) -> str:
    return f"{rng.uniform(41, 46):.6f} {rng.uniform(19, 23):.6f} {rng.uniform(50, 900):.1f} 5.0"


# (field, new value, reason, weight); "{i}" is a roster row.
_KINDS: tuple[tuple[str, Callable[[random.Random], str], str, int], ...] = (
    ("/respondent/age", _number(18, 90), "age typed with an extra digit", 20),
    ("/household/monthly_income", _amount, "income in the wrong currency", 12),
    ("/household/household_size", _number(1, 12), "household size miscounted", 8),
    ("/respondent/full_name", _name, "name spelled as on the ID card", 12),
    ("/employment/occupation", _name, "occupation recoded", 6),
    ("/respondent/sex", lambda rng: rng.choice(("female", "male")), "sex checked by phone", 4),
    ("/location", _location, "location taken outside the house", 4),
    ("/member[{i}]/member_age", _number(0, 90), "member's age as on the ID card", 18),
    ("/member[{i}]/member_name", _name, "member's name spelled as on the ID card", 12),
    ("", lambda rng: "", "duplicate interview", 2),
)


def _proposals(count: int, submissions: int) -> list[tuple[int, str | None, str, str]]:
    """(submission id, field, new value, reason) for `count` entries, oldest first."""
    rng = random.Random(_SEED)
    weights = [kind[3] for kind in _KINDS]
    chosen = rng.sample(range(1, submissions + 1), min(count, submissions))
    removed: set[int] = set()
    entries: list[tuple[int, str | None, str, str]] = []
    while len(entries) < count:
        field, value, reason, _ = rng.choices(_KINDS, weights)[0]
        # One in twenty cleans an answer cleaned before (a correction of a correction).
        if entries and rng.random() < 0.05:
            submission, field_before, _, reason = rng.choice(entries)
            if field_before is None:
                continue
            pattern = re.sub(r"\[[0-9]+\]", "[{i}]", field_before)
            kind = next(k for k in _KINDS if k[0] == pattern)
            entries.append((submission, field_before, kind[1](rng), reason + ", checked again"))
            continue
        submission = chosen[len(entries) % len(chosen)]
        if submission in removed:
            continue
        if not field:
            removed.add(submission)
            entries.append((submission, None, "", reason))
            continue
        entries.append((submission, field.format(i=rng.randint(1, MEMBERS)), value(rng), reason))
    return entries


async def _write(backend: Backend, count: int, submissions: int) -> int:
    """Entries in the kept database; returns how many it holds for the form."""
    from sqlalchemy import delete, func, select

    from exports.cleaning import ProposedChange
    from server.db.models import CleaningEntry, Form, Submission
    from server.runtime import close_runtime, open_runtime
    from server.services import accounts, cleaning
    from server.settings import Settings

    settings = Settings.from_env(backend.env | {"HOMEWARD_SECRET_KEY": SECRET_KEY})
    rt = await open_runtime(settings)
    try:
        async with rt.transaction() as db:
            form = (await db.scalars(select(Form).where(Form.xml_form_id == FORM_ID))).one()
            held = await db.scalar(
                select(func.count())
                .select_from(CleaningEntry)
                .where(CleaningEntry.form_id == form.id)
            )
            if held == count:
                return count
            # Another size was asked before: start the log again.
            await db.execute(delete(CleaningEntry).where(CleaningEntry.form_id == form.id))
            found = await accounts.find_user(db, "bench@example.org")
            assert found is not None
            admin = await accounts.load_principal(db, found[0])
        proposals = _proposals(count, submissions)
        for start in range(0, len(proposals), _CHUNK):
            part = proposals[start : start + _CHUNK]
            async with rt.transaction() as db:
                form = (await db.scalars(select(Form).where(Form.xml_form_id == FORM_ID))).one()
                ids = {p[0] for p in part}
                rows = await db.execute(
                    select(Submission.id, Submission.instance_id).where(
                        Submission.form_id == form.id, Submission.id.in_(ids)
                    )
                )
                instance_ids = {row[0]: row[1] for row in rows}
                await cleaning.add_entries(
                    db,
                    form,
                    [
                        ProposedChange(
                            instance_id=instance_ids[submission],
                            field=field,
                            new_value=value if field is not None else None,
                            reason=reason,
                            source="upload",
                        )
                        for submission, field, value, reason in part
                    ],
                    admin,
                )
        return len(proposals)
    finally:
        await close_runtime(rt)


def write_entries(backend: Backend, count: int, submissions: int) -> int:
    """`count` entries for the benchmark form's `submissions` (replacing another log)."""
    import asyncio

    return asyncio.run(_write(backend, count, submissions))
