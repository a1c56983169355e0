"""Independently written OData v4 clients read the feed of a live server.

Two libraries that know nothing of ODK: python-odata (reflects ``$metadata``
into entity classes, queries with filters, ``$top``/``$skip``) and odatapy (an
Apache Olingo port: reads ``$metadata`` into an EDM, types every value by it and
follows ``@odata.nextLink``). A form with numbers, a date, a dateTime, a
geopoint, a group and nested repeats is filled in seven times, more than two
pages of three, and what the clients read must be what was submitted.

What they found is pinned here and written down in docs/compatibility.md
("OData feed"): python-odata needed explicit enum member values (now sent);
Central's dotted repeat type names cannot be resolved by a client that splits a
qualified name at its last dot (odatapy is told the type instead); ``/$count``
is not served and ``Submissions('id')`` answers with a collection, both as in
Central.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
import requests
from odata import ODataService
from odata.exceptions import ODataError
from odata.property import DecimalProperty, IntegerProperty, NavigationProperty, StringProperty
from odatapy.client import BearerAuth, EdmEnabledODataClient, Field, HttpxTransport, and_
from odatapy.data import ComplexValue, Entity
from odatapy.edm.geo import Point
from odatapy.edm.names import FullQualifiedName

from forms.xlsform import compile_xlsform
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.slow  # a real server process per test

FORM_ID = "client_check"
FORM = f"""
| survey |
|        | type          | name        | label     |
|        | text          | name        | Name      |
|        | integer       | age         | Age       |
|        | decimal       | weight      | Weight    |
|        | date          | born        | Born      |
|        | dateTime      | seen        | Seen      |
|        | geopoint      | home        | Home      |
|        | select_one yn | consent     | Consent   |
|        | begin group   | household   | Household |
|        | integer       | size        | Size      |
|        | begin repeat  | member      | Member    |
|        | text          | member_name | Name      |
|        | integer       | member_age  | Age       |
|        | begin repeat  | job         | Job       |
|        | text          | title       | Title     |
|        | end repeat    |             |           |
|        | end repeat    |             |           |
|        | end group     |             |           |
| choices |
|         | list_name | name | label |
|         | yn        | yes  | Yes   |
|         | yn        | no   | No    |
| settings |
|          | form_id   | version |
|          | {FORM_ID} | 1       |
"""
NAMESPACE = f"org.opendatakit.user.{FORM_ID}"
MEMBER_SET = "Submissions.household.member"
JOB_SET = "Submissions.household.member.job"
COUNT = 7
PAGE = 3


@dataclass(frozen=True)
class Member:
    name: str
    age: int
    jobs: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """One filled-in form, as Collect would send it."""

    instance_id: str
    name: str
    age: int | None
    weight: Decimal
    born: dt.date
    seen: dt.datetime
    home: tuple[float, float, float, float] | None  # latitude longitude altitude accuracy
    consent: str
    members: tuple[Member, ...]


def answer(number: int) -> Answer:
    members = tuple(
        Member(
            f"Mëmber {number}.{m}",
            10 * m + number,
            tuple(f"job {number}.{m}.{j}" for j in range(m)),
        )
        for m in range(number % 3 + 1)
    )
    return Answer(
        instance_id=f"uuid:client-{number:04d}",
        name=f'Zoë "{number}" & co',
        age=None if number == 4 else 30 + number,  # one left empty
        weight=Decimal(f"{60 + number}.25"),
        born=dt.date(1990, 1 + number, 2 * number + 1),
        seen=dt.datetime(
            2024, 5, 6, 7, number, 9, 123000, tzinfo=dt.timezone(dt.timedelta(hours=2))
        ),
        home=None if number == 5 else (42.5 + number / 100, 21.25, 500.0 + number, 4.5),
        consent="yes" if number % 2 else "no",
        members=members,
    )


def submission_xml(given: Answer) -> bytes:
    def job(title: str) -> str:
        return f"<job><title>{escape(title)}</title></job>"

    members = "".join(
        f"<member><member_name>{escape(m.name)}</member_name><member_age>{m.age}</member_age>"
        f"{''.join(job(title) for title in m.jobs)}</member>"
        for m in given.members
    )
    home = " ".join(f"{value:g}" for value in given.home) if given.home else ""
    return (
        f'<data id="{FORM_ID}" version="1"><name>{escape(given.name)}</name>'
        f"<age>{'' if given.age is None else given.age}</age><weight>{given.weight}</weight>"
        f"<born>{given.born.isoformat()}</born><seen>{given.seen.isoformat()}</seen>"
        f"<home>{home}</home><consent>{given.consent}</consent>"
        f"<household><size>{len(given.members)}</size>{members}</household>"
        f"<meta><instanceID>{given.instance_id}</instanceID></meta></data>"
    ).encode()


@dataclass(frozen=True)
class Feed:
    url: str  # the service root, ending in .svc
    token: str
    answers: list[Answer]  # oldest first

    @property
    def newest_first(self) -> list[str]:
        return [a.instance_id for a in reversed(self.answers)]

    def by_id(self, instance_id: str) -> Answer:
        return next(a for a in self.answers if a.instance_id == instance_id)


@pytest.fixture
def feed(live_server: str) -> Iterator[Feed]:
    """The form published on the live server and filled in COUNT times."""
    with httpx.Client(base_url=live_server, timeout=30) as http:
        session = http.post("/v1/sessions", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        token = session.json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        project_id = http.post("/v1/projects", json={"name": "Clients"}).json()["id"]
        compiled = compile_xlsform(
            FORM.encode(), file_name=f"{FORM_ID}.md", form_id_fallback=FORM_ID
        )
        xml = {"Content-Type": "application/xml"}
        forms = f"/v1/projects/{project_id}/forms"
        created = http.post(f"{forms}?publish=true", content=compiled.xml, headers=xml)
        assert created.status_code == 200, created.text
        answers = [answer(number) for number in range(COUNT)]
        for given in answers:
            sent = http.post(
                f"{forms}/{FORM_ID}/submissions", content=submission_xml(given), headers=xml
            )
            assert sent.status_code == 200, sent.text
        yield Feed(f"{live_server}{forms}/{FORM_ID}.svc", token, answers)


# --- python-odata ----------------------------------------------------------


def python_odata(feed: Feed) -> ODataService:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {feed.token}"
    return ODataService(feed.url, session=session, reflect_entities=True, quiet_progress=True)


def test_python_odata_reflects_the_feed_and_reads_what_was_submitted(feed: Feed) -> None:
    service = python_odata(feed)

    assert set(service.entities) == {"Submissions", MEMBER_SET, JOB_SET}
    submissions = service.entities["Submissions"]
    assert isinstance(submissions.age, IntegerProperty)
    assert isinstance(submissions.weight, DecimalProperty)
    assert isinstance(submissions.name, StringProperty)
    key = getattr(submissions, "__id")
    assert key.primary_key
    assert not submissions.name.primary_key
    assert isinstance(service.entities[MEMBER_SET].job, NavigationProperty)

    rows = service.query(submissions).all()
    assert [row.__odata__["__id"] for row in rows] == feed.newest_first
    for row in rows:
        given = feed.by_id(row.__odata__["__id"])
        assert row.name == given.name
        assert row.age == given.age
        assert row.weight == given.weight
        assert row.seen == given.seen  # DatetimeProperty: an aware datetime
        assert row.born == given.born.isoformat()  # python-odata has no Edm.Date type
        assert row.consent == given.consent
        assert row.household["size"] == len(given.members)  # a group: a complex value
        assert row.meta == {"instanceID": given.instance_id}
        if given.home is None:
            assert row.home is None
        else:
            latitude, longitude, altitude, accuracy = given.home
            assert row.home == {
                "type": "Point",
                "coordinates": [longitude, latitude, altitude],
                "properties": {"accuracy": accuracy},
            }

    # The client's own paging: $top and $skip until a short page.
    paged: list[str] = []
    while True:
        page = service.query(submissions).limit(PAGE).offset(len(paged)).all()
        paged += [row.__odata__["__id"] for row in page]
        if len(page) < PAGE:
            break
    assert paged == feed.newest_first


def test_python_odata_filters_counts_and_reads_repeat_tables(feed: Feed) -> None:
    service = python_odata(feed)
    submissions = service.entities["Submissions"]
    key = getattr(submissions, "__id")
    third = feed.answers[2].instance_id

    assert [r.name for r in service.query(submissions).filter(key == third)] == [
        feed.answers[2].name
    ]
    assert service.query(submissions).get(third).__odata__["__id"] == third
    rows = service.query(submissions).all()
    boundary = rows[3].__system["submissionDate"]  # the fourth-newest
    newer = service.query(submissions).filter(f"__system/submissionDate ge {boundary}")
    assert [row.__odata__["__id"] for row in newer] == feed.newest_first[:4]
    older = service.query(submissions).filter(f"__system/submissionDate lt {boundary}")
    assert [row.__odata__["__id"] for row in older] == feed.newest_first[4:]

    counted = service.default_context.connection.execute_get(
        f"{feed.url}/Submissions", {"$count": "true", "$top": "1"}
    )
    assert counted["@odata.count"] == COUNT
    assert "$skiptoken=" in counted["@odata.nextLink"]
    with pytest.raises(ODataError, match="404"):
        service.query(submissions).count()  # GET Submissions/$count: Central answers 404 too

    members = service.query(service.entities[MEMBER_SET]).all()
    expected = {(a.instance_id, m.name, m.age) for a in feed.answers for m in a.members}
    got = {(m.__odata__["__Submissions-id"], m.member_name, m.member_age) for m in members}
    assert got == expected
    assert len(members) == len(expected)

    jobs = service.entities[JOB_SET]
    last = feed.answers[-1]
    of_last = service.query(jobs).filter(f"$root/Submissions/__id eq '{last.instance_id}'").all()
    member_ids = {
        m.__odata__["__id"]: m.member_name
        for m in members
        if m.__odata__["__Submissions-id"] == last.instance_id
    }
    assert sorted(
        (member_ids[j.__odata__["__Submissions-household-member-id"]], j.title) for j in of_last
    ) == sorted((m.name, title) for m in last.members for title in m.jobs)


# --- odatapy ---------------------------------------------------------------


def odatapy(feed: Feed, **options: Any) -> EdmEnabledODataClient:
    transport = HttpxTransport(auth=BearerAuth(feed.token))
    return EdmEnabledODataClient(feed.url, transport, odata_version="4.0", **options)


def value(entity: Entity | ComplexValue, path: str) -> Any:
    """A property's value by a slash path through complex values."""
    head, _, rest = path.partition("/")
    found = entity.get_property(head)
    assert found is not None, f"no {head} in {entity}"
    return value(found.value, rest) if rest else found.value


def test_odatapy_pages_through_next_links_with_typed_values(feed: Feed) -> None:
    client = odatapy(feed)

    listed = [entry.name for entry in client.get_service_document().entries]
    assert listed == ["Submissions", MEMBER_SET, JOB_SET]
    edm = client.get_edm()
    assert [s.name for s in edm.entity_container.entity_sets] == listed
    root_type = edm.get_entity_type(FullQualifiedName(NAMESPACE, "Submissions"))
    assert root_type is not None
    declared = {
        name: prop.type_fqn
        for name in ("age", "weight", "born", "seen", "home", "household", "__system")
        if (prop := root_type.get_structural_property(name)) is not None
    }
    assert declared == {
        "age": "Edm.Int64",
        "weight": "Edm.Decimal",
        "born": "Edm.Date",
        "seen": "Edm.DateTimeOffset",
        "home": "Edm.GeographyPoint",
        "household": f"{NAMESPACE}.household",
        "__system": "org.opendatakit.submission.metadata",
    }
    assert root_type.key_predicate_names == ["__id"]

    pages = list(client.iter_pages(client.entity_set_uri("Submissions").top(PAGE).count()))
    assert [len(page.entities) for page in pages] == [3, 3, 1]
    assert [page.count for page in pages] == [COUNT] * 3
    assert all("$skiptoken=" in (page.next_link or "") for page in pages[:-1])
    assert pages[-1].next_link is None
    rows = [entity for page in pages for entity in page.entities]
    assert [value(row, "__id") for row in rows] == feed.newest_first

    for row in rows:
        given = feed.by_id(value(row, "__id"))
        assert value(row, "name") == given.name
        assert value(row, "age") == given.age
        assert value(row, "weight") == given.weight
        assert isinstance(value(row, "weight"), Decimal)
        assert value(row, "born") == given.born
        assert value(row, "seen") == given.seen
        assert value(row, "household/size") == len(given.members)
        submitted_at = value(row, "__system/submissionDate")
        assert isinstance(submitted_at, dt.datetime)
        assert submitted_at.tzinfo is not None
        home = value(row, "home")
        if given.home is None:
            assert home is None
        else:
            assert isinstance(home, Point)
            latitude, longitude, altitude, _ = given.home
            assert (float(home.x), float(home.y), home.z) == (longitude, latitude, altitude)

    boundary = value(rows[3], "__system/submissionDate")
    skipped = feed.newest_first[1]
    query = (
        client.entity_set_uri("Submissions")
        .filter(and_(Field("__system/submissionDate").ge(boundary), Field("__id").ne(skipped)))
        .count()
    )
    filtered = client.get_entity_set(query)
    expected = [i for i in feed.newest_first[:4] if i != skipped]
    assert [value(row, "__id") for row in filtered.entities] == expected
    assert filtered.count == len(expected)

    top = client.get_entity_set(client.entity_set_uri("Submissions").top(2))
    assert [value(row, "__id") for row in top.entities] == feed.newest_first[:2]
    assert top.next_link is not None


def test_odatapy_reads_repeat_tables_once_told_their_dotted_type(feed: Feed) -> None:
    client = odatapy(feed)
    edm = client.get_edm()
    member_set = edm.entity_container.get_entity_set(MEMBER_SET)
    assert member_set is not None
    # The set's type is "<namespace>.Submissions.household.member"; split at its
    # last dot it names type "member" in a namespace that does not exist.
    with pytest.raises(KeyError, match="Unknown entity type"):
        _ = member_set.entity_type
    member_type = edm.get_entity_type(FullQualifiedName(NAMESPACE, MEMBER_SET))
    job_type = edm.get_entity_type(FullQualifiedName(NAMESPACE, JOB_SET))
    assert member_type is not None
    assert job_type is not None
    nav = member_type.get_navigation_property("job")
    assert nav is not None
    assert nav.type_fqn == f"{NAMESPACE}.{JOB_SET}"
    assert nav.is_collection

    client = odatapy(feed, entity_types={MEMBER_SET: member_type, JOB_SET: job_type})
    members = list(client.iter_entities(client.entity_set_uri(MEMBER_SET).top(PAGE)))
    expected = [(a.instance_id, m.name, m.age) for a in reversed(feed.answers) for m in a.members]
    got = [
        (value(m, "__Submissions-id"), value(m, "member_name"), value(m, "member_age"))
        for m in members
    ]
    assert sorted(got) == sorted(expected)
    assert len(got) == len(expected) > 2 * PAGE  # more than two pages of repeat rows

    jobs = list(client.iter_entities(client.entity_set_uri(JOB_SET).top(PAGE)))
    member_names = {value(m, "__id"): value(m, "member_name") for m in members}
    assert sorted(
        (member_names[value(j, "__Submissions-household-member-id")], value(j, "title"))
        for j in jobs
    ) == sorted((m.name, title) for a in feed.answers for m in a.members for title in m.jobs)

    # Submissions('id') answers with a one-row collection, as Central does.
    first = feed.answers[0]
    one = client.get_entity_set(client.entity_uri("Submissions", first.instance_id))
    assert [value(row, "name") for row in one.entities] == [first.name]
