"""The benchmark's questionnaire: a 40-question return-and-reintegration interview.

One XForm (written here, not compiled from XLSForm, so the benchmark needs no
pyxform) and a generator of Collect-shaped submission XML of about 2 KB each.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from xml.sax.saxutils import escape

FORM_ID = "bench_reintegration"
FORM_VERSION = "2026061501"
PHOTO_FIELD = "id_photo"

_CHOICES: dict[str, tuple[str, ...]] = {
    "yes_no": ("yes", "no"),
    "sex": ("female", "male", "other", "refused"),
    "country": ("al", "xk", "md", "rs", "mk", "ba", "de", "fr", "it", "gr", "se", "be"),
    "marital": ("single", "married", "divorced", "widowed"),
    "language": ("sq", "sr", "ro", "ru", "de", "en", "fr", "it"),
    "reason": ("asylum_rejected", "family", "health", "work_ended", "voluntary", "other"),
    "housing": ("own", "rented", "relatives", "shelter", "none"),
    "need": ("housing", "employment", "health", "education", "legal", "documents", "cash"),
    "service": ("ngo", "social_services", "employment_office", "clinic", "lawyer"),
    "skill": ("construction", "care", "driving", "cooking", "it", "agriculture", "trade"),
}

_STORY = (
    "the family returned in spring after the asylum claim was refused and stayed with "
    "relatives in the village while the children enrolled again at the local school and "
    "the father looked for seasonal work in construction the mother asked about health "
    "insurance and documents for the youngest child who was born abroad"
)
_WORDS = tuple(_STORY.split())


@dataclass(frozen=True, slots=True)
class Question:
    group: str | None
    name: str
    kind: str  # string, int, decimal, date, dateTime, geopoint, binary, select1, select
    choices: str | None = None
    long_text: bool = False


QUESTIONS: tuple[Question, ...] = (
    Question("consent", "consent", "select1", "yes_no"),
    Question("consent", "interviewer", "string"),
    Question("consent", "interview_date", "date"),
    Question("consent", "started_at", "dateTime"),
    Question("respondent", "full_name", "string"),
    Question("respondent", "age", "int"),
    Question("respondent", "sex", "select1", "sex"),
    Question("respondent", "date_of_birth", "date"),
    Question("respondent", "phone", "string"),
    Question("respondent", "nationality", "select1", "country"),
    Question("respondent", "marital_status", "select1", "marital"),
    Question("respondent", "languages", "select", "language"),
    Question("migration", "country_abroad", "select1", "country"),
    Question("migration", "months_abroad", "int"),
    Question("migration", "return_date", "date"),
    Question("migration", "return_reason", "select", "reason"),
    Question("migration", "assisted_return", "select1", "yes_no"),
    Question("migration", "travel_documents", "select1", "yes_no"),
    Question("migration", "story", "string", long_text=True),
    Question("household", "household_size", "int"),
    Question("household", "children", "int"),
    Question("household", "elderly_dependants", "int"),
    Question("household", "monthly_income", "decimal"),
    Question("household", "housing", "select1", "housing"),
    Question("household", "debt", "select1", "yes_no"),
    Question("household", "debt_amount", "decimal"),
    Question("needs", "needs", "select", "need"),
    Question("needs", "priority_need", "select1", "need"),
    Question("needs", "health_condition", "select1", "yes_no"),
    Question("needs", "health_notes", "string", long_text=True),
    Question("needs", "wellbeing_score", "int"),
    Question("needs", "referrals", "select", "service"),
    Question("employment", "employed", "select1", "yes_no"),
    Question("employment", "occupation", "string"),
    Question("employment", "skills", "select", "skill"),
    Question("employment", "training_interest", "select1", "yes_no"),
    Question(None, "location", "geopoint"),
    Question(None, PHOTO_FIELD, "binary"),
    Question(None, "follow_up_consent", "select1", "yes_no"),
    Question(None, "notes", "string", long_text=True),
)


def _groups() -> list[tuple[str | None, list[Question]]]:
    groups: list[tuple[str | None, list[Question]]] = []
    for question in QUESTIONS:
        if groups and groups[-1][0] == question.group and question.group is not None:
            groups[-1][1].append(question)
        else:
            groups.append((question.group, [question]))
    return groups


def _path(question: Question) -> str:
    return f"/data/{question.group}/{question.name}" if question.group else f"/data/{question.name}"


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


# The export benchmark's form also has a household roster: a repeat of three rows.
MEMBER_FIELDS = (("member_name", "string"), ("member_age", "int"), ("relation", "string"))
MEMBERS = 3


def build_xform(*, with_members: bool = False) -> bytes:
    """The XForm as Central would receive it: groups, selects, a geopoint and a photo."""
    instance: list[str] = []
    binds: list[str] = []
    body: list[str] = []
    for group, questions in _groups():
        if group:
            instance.append(f"<{group}>")
            body.append(f'<group ref="/data/{group}"><label>{_label(group)}</label>')
        for q in questions:
            instance.append(f"<{q.name}/>")
            required = ' required="true()"' if q.name in {"consent", "full_name"} else ""
            binds.append(f'<bind nodeset="{_path(q)}" type="{q.kind}"{required}/>')
            label = f"<label>{_label(q.name)}</label>"
            if q.kind in {"select1", "select"}:
                assert q.choices is not None
                items = "".join(
                    f"<item><label>{_label(c)}</label><value>{c}</value></item>"
                    for c in _CHOICES[q.choices]
                )
                body.append(f'<{q.kind} ref="{_path(q)}">{label}{items}</{q.kind}>')
            elif q.kind == "binary":
                body.append(f'<upload ref="{_path(q)}" mediatype="image/*">{label}</upload>')
            else:
                body.append(f'<input ref="{_path(q)}">{label}</input>')
        if group:
            instance.append(f"</{group}>")
            body.append("</group>")
    if with_members:
        instance.append("<member>" + "".join(f"<{n}/>" for n, _ in MEMBER_FIELDS) + "</member>")
        binds.extend(f'<bind nodeset="/data/member/{n}" type="{k}"/>' for n, k in MEMBER_FIELDS)
        body.append(
            '<group ref="/data/member"><label>Household member</label>'
            '<repeat nodeset="/data/member">'
            + "".join(
                f'<input ref="/data/member/{n}"><label>{_label(n)}</label></input>'
                for n, _ in MEMBER_FIELDS
            )
            + "</repeat></group>"
        )
    return (
        '<?xml version="1.0"?>\n'
        '<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" '
        'xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
        'xmlns:odk="http://www.opendatakit.org/xforms">'
        "<h:head><h:title>Reintegration interview (benchmark)</h:title><model>"
        f'<instance><data id="{FORM_ID}" version="{FORM_VERSION}">'
        + "".join(instance)
        + "<meta><instanceID/><instanceName/></meta></data></instance>"
        + "".join(binds)
        + '<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" '
        'jr:preload="uid"/>'
        '<bind nodeset="/data/meta/instanceName" type="string" '
        'calculate="/data/respondent/full_name"/>'
        "</model></h:head><h:body>" + "".join(body) + "</h:body></h:html>"
    ).encode()


def _answer(q: Question, rng: random.Random, photo_name: str | None) -> str:
    if q.kind == "select1":
        assert q.choices is not None
        return rng.choice(_CHOICES[q.choices])
    if q.kind == "select":
        assert q.choices is not None
        options = _CHOICES[q.choices]
        return " ".join(rng.sample(options, rng.randint(1, min(3, len(options)))))
    if q.kind == "int":
        return str(rng.randint(0, 90))
    if q.kind == "decimal":
        return f"{rng.uniform(0, 2000):.2f}"
    if q.kind == "date":
        return (date(2025, 1, 1) + timedelta(days=rng.randint(0, 500))).isoformat()
    if q.kind == "dateTime":
        moment = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**6))
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "+02:00")
    if q.kind == "geopoint":
        return f"{rng.uniform(41, 46):.6f} {rng.uniform(19, 23):.6f} {rng.uniform(50, 900):.1f} 4.5"
    if q.kind == "binary":
        return photo_name or ""
    if q.long_text:
        return " ".join(rng.choices(_WORDS, k=rng.randint(28, 34)))
    return " ".join(rng.choices(_WORDS, k=2)).title()


def submission_xml(
    instance_id: str, rng: random.Random, photo_name: str | None, *, members: int = 0
) -> bytes:
    """One filled-in interview as Collect serialises it (about 2 KB)."""
    parts = [
        f'<?xml version="1.0" ?><data xmlns:jr="http://openrosa.org/javarosa" '
        f'xmlns:orx="http://openrosa.org/xforms" id="{FORM_ID}" version="{FORM_VERSION}">'
    ]
    name = ""
    for group, questions in _groups():
        if group:
            parts.append(f"<{group}>")
        for q in questions:
            value = _answer(q, rng, photo_name)
            if q.name == "full_name":
                name = value
            parts.append(f"<{q.name}>{escape(value)}</{q.name}>")
        if group:
            parts.append(f"</{group}>")
    for number in range(1, members + 1):
        name_of_member = " ".join(rng.choices(_WORDS, k=2)).title()
        parts.append(
            f"<member><member_name>{escape(name_of_member)}</member_name>"
            f"<member_age>{rng.randint(0, 90)}</member_age>"
            f"<relation>{'head' if number == 1 else 'relative'}</relation></member>"
        )
    parts.append(
        f"<meta><instanceID>{instance_id}</instanceID>"
        f"<instanceName>{escape(name)}</instanceName></meta></data>"
    )
    return "".join(parts).encode()
