"""What the server writes to disk is readable by its own user only."""

from __future__ import annotations

import stat
from pathlib import Path

from server.demo import seed_demo
from server.runtime import Runtime
from storage.filesystem import FilesystemBlobStore
from tests.server.conftest import World, submission_xml
from tests.server.test_hostile_input import multipart_body, part, post_raw, xml_part


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_data_folder_database_and_blobs_are_private(world: World) -> None:
    body = multipart_body(
        xml_part(submission_xml("uuid:perm")),
        part("p.jpg", b"\xff\xd8private", filename="p.jpg", content_type="image/jpeg"),
    )
    assert (await post_raw(world, body)).status_code == 201
    settings = world.runtime.settings
    assert mode(settings.data_dir) == 0o700
    if settings.resolved_database_url.startswith("sqlite"):
        database = settings.data_dir / "homeward.sqlite3"
        assert mode(database) == 0o600
        for journal in (Path(f"{database}-wal"), Path(f"{database}-shm")):
            if journal.exists():
                assert mode(journal) == 0o600, journal
    store = world.runtime.blobs
    if isinstance(store, FilesystemBlobStore):
        blobs = [p for p in store.root.rglob("*") if p.is_file()]
        assert blobs
        assert {mode(p) for p in blobs} == {0o600}


async def test_the_demo_qr_code_is_private(runtime: Runtime) -> None:
    demo = await seed_demo(runtime, "http://127.0.0.1:8383")
    assert mode(demo.qr_png_path) == 0o600
