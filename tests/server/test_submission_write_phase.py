"""The write phase of ingest for a new submission: on PostgreSQL one statement (a
data-modifying CTE) sent without BEGIN and COMMIT, on SQLite separate inserts on the
writer thread. Both must write the same rows and lose an insert race the same way."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import event, select

from server import problems
from server.auth import Principal
from server.db.models import Audit, Blob, Submission, SubmissionAttachment, SubmissionDef
from server.runtime import Runtime
from server.services import accounts
from server.services.submissions import (
    Incoming,
    IngestResult,
    Target,
    find_target_on,
    parse_incoming,
    store_attachments,
    write_received,
)
from tests.server.conftest import World
from tests.server.test_hostile_input import store_state
from tests.server.test_submissions import (
    assert_created,
    attachments_of,
    defs_of,
    pair_xml,
    publish_pair_form,
    submission_rows,
    submit,
)

FRONT = b"front photo bytes"


async def rows_of(world: World, model: Any) -> list[Any]:
    async with world.runtime.transaction() as db:
        return list(await db.scalars(select(model)))


async def test_new_submission_writes_version_attachments_blob_and_audit(world: World) -> None:
    await publish_pair_form(world)
    xml = pair_xml("uuid:whole")
    response = await submit(
        world, xml, {"front.jpg": FRONT}, incomplete=True, query="?deviceID=collect%3Aabc"
    )
    assert_created(response)

    (submission,) = await submission_rows(world)
    assert (submission.instance_id, submission.draft) == ("uuid:whole", False)
    assert submission.submitter_id == world.app_user_id
    assert submission.device_id == "collect:abc"
    (version,) = await defs_of(world, "uuid:whole")
    assert version.xml == xml
    assert version.xml_sha256 == hashlib.sha256(xml).hexdigest()
    assert msgspec.json.decode(version.record) == {
        "front": "front.jpg",
        "back": "back.jpg",
        "meta": {"instanceID": "uuid:whole"},
    }
    assert (version.current, version.encrypted, version.deprecated_id) == (True, False, None)
    assert (version.submitter_id, version.device_id) == (world.app_user_id, "collect:abc")
    assert version.created_at == submission.created_at

    front_sha = hashlib.sha256(FRONT).hexdigest()
    assert await attachments_of(world, version.id) == {"front.jpg": front_sha, "back.jpg": None}
    (blob,) = [b for b in await rows_of(world, Blob) if b.sha256 == front_sha]
    assert (blob.md5, blob.size, blob.content_type) == (
        hashlib.md5(FRONT, usedforsecurity=False).hexdigest(),
        len(FRONT),
        "image/jpeg",
    )
    (audit,) = [a for a in await rows_of(world, Audit) if a.action == "submission.create"]
    assert (audit.actor_id, audit.target_kind, audit.target_id) == (
        world.app_user_id,
        "submission",
        submission.id,
    )
    assert audit.details is not None
    assert msgspec.json.decode(audit.details) == {"instanceId": "uuid:whole", "form": "pair"}


async def test_new_submission_without_files_writes_no_attachment_or_blob_rows(
    world: World,
) -> None:
    before = await store_state(world)
    xml = (
        b'<data id="simple" version="1"><name>Arta</name>'
        b"<meta><instanceID>uuid:bare</instanceID></meta></data>"
    )
    assert_created(await submit(world, xml))
    after = await store_state(world)
    changed = {table for table, count in after.rows.items() if count != before.rows[table]}
    assert changed == {"submissions", "submission_defs", "audits"}
    assert after.blobs == before.blobs


# --- the insert race, driven phase by phase ------------------------------------------


async def app_user(world: World) -> Principal:
    found = await world.runtime.query(
        lambda connection: accounts.app_user_on(connection, world.app_user_token)
    )
    assert found is not None
    return found[0]


async def read_phase(world: World, xml: bytes, by: Principal) -> Target:
    parsed = parse_incoming(xml)
    return await world.runtime.query(
        lambda connection: find_target_on(
            connection, project_id=world.project_id, parsed=parsed, by=by
        )
    )


async def blob_and_write_phases(
    world: World, target: Target, xml: bytes, photo: bytes, tmp_path: Path, by: Principal
) -> IngestResult:
    path = tmp_path / hashlib.sha256(photo).hexdigest()
    path.write_bytes(photo)
    incoming = Incoming(
        xml=xml,
        files={"front.jpg": path},
        content_types={"front.jpg": "image/jpeg"},
        device_id=None,
        user_agent=None,
    )
    stored = await store_attachments(world.runtime, target, incoming)
    return await write_received(
        world.runtime, target=target, incoming=incoming, stored=stored, by=by
    )


async def test_copy_that_loses_the_insert_race_is_409_3_and_writes_nothing(
    world: World, tmp_path: Path
) -> None:
    await publish_pair_form(world)
    by = await app_user(world)
    xml = pair_xml("uuid:twice")
    # Both copies are read before either is written: neither finds the other.
    first, second = await read_phase(world, xml, by), await read_phase(world, xml, by)
    assert first.existing is None
    assert second.existing is None

    won = await blob_and_write_phases(world, first, xml, b"first copy", tmp_path, by)
    assert won.outcome == "created"
    assert won.missing_attachments == ["back.jpg"]
    before = await store_state(world)
    with pytest.raises(problems.Problem) as lost:
        await blob_and_write_phases(world, second, xml, b"second copy", tmp_path, by)
    assert lost.value.code == 409.3

    after = await store_state(world)
    assert after.rows == before.rows  # no blob row, version, attachment or audit
    blobs = {blob.sha256 for blob in await rows_of(world, Blob)}
    assert hashlib.sha256(b"first copy").hexdigest() in blobs
    assert hashlib.sha256(b"second copy").hexdigest() not in blobs
    (version,) = await defs_of(world, "uuid:twice")
    assert (await attachments_of(world, version.id))["front.jpg"] == hashlib.sha256(
        b"first copy"
    ).hexdigest()

    # Collect sends it again, as told: now it is a resend of a known submission.
    again = await read_phase(world, xml, by)
    assert again.existing == (won.submission_id, version.id, version.xml_sha256)
    resent = await blob_and_write_phases(world, again, xml, b"first copy", tmp_path, by)
    assert (resent.outcome, resent.submission_id) == ("attachments", won.submission_id)


@contextmanager
def statements_of(runtime: Runtime) -> Iterator[list[tuple[str, bool]]]:
    """The statements sent, each with whether its connection was in autocommit mode."""
    seen: list[tuple[str, bool]] = []

    def remember(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append((statement, connection.connection.dbapi_connection.autocommit))

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", remember)


@pytest.mark.postgres_only  # SQLite writes a new submission with separate inserts
async def test_new_submission_is_one_statement_outside_a_transaction_on_postgresql(
    world: World, tmp_path: Path
) -> None:
    await publish_pair_form(world)
    by = await app_user(world)
    xml = pair_xml("uuid:one")
    target = await read_phase(world, xml, by)
    with statements_of(world.runtime) as statements:
        result = await blob_and_write_phases(world, target, xml, FRONT, tmp_path, by)
    assert result.outcome == "created"
    ((statement, autocommit),) = statements
    assert statement.lstrip().startswith("WITH submission AS")
    assert autocommit  # no BEGIN and COMMIT round trips around it
    async with world.runtime.transaction() as db:
        assert await db.scalar(select(Submission.id)) == result.submission_id
        assert await db.scalar(select(SubmissionDef.submission_id)) == result.submission_id
        names = await db.scalars(select(SubmissionAttachment.name).order_by("name"))
        assert list(names) == ["back.jpg", "front.jpg"]
