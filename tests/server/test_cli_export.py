"""``homeward export`` writes the same export as the API, from the command line."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from server.settings import Settings
from tests.e2e.conftest import server_environment
from tests.server.conftest import World
from tests.server.test_csv_export import as_dicts, read_zip, three_submissions


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=server_environment(settings, 0),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_export_command_writes_the_api_s_zip(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    ids = await three_submissions(world)
    out = tmp_path / "out"
    done = run_cli(
        settings,
        "export",
        "--project",
        str(world.project_id),
        "--form",
        "simple",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    written = (out / "simple.csv.zip").read_bytes()
    api = await world.client.get(
        f"/v1/projects/{world.project_id}/forms/simple/submissions.csv.zip",
        headers=world.admin_headers,
    )
    assert read_zip(written).keys() == read_zip(api.content).keys()
    rows = as_dicts(read_zip(written)["simple.csv"])
    assert [row["KEY"] for row in rows] == list(reversed(ids))
    assert not list(out.glob("*.partial"))


async def test_export_command_names_an_unknown_form(world: World, settings: Settings) -> None:
    done = run_cli(settings, "export", "--project", str(world.project_id), "--form", "nope")
    assert done.returncode == 1
    assert "homeward:" in done.stderr
    assert "Traceback" not in done.stderr


def run_cli_on_a_terminal(settings: Settings, *args: str) -> tuple[int, str]:
    """Run the CLI with its stderr on a pseudo-terminal; the exit code and what it showed."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=server_environment(settings, 0),
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end is closed: everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    return done.returncode, shown.decode()


async def test_export_command_shows_a_progress_bar_on_a_terminal(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    await three_submissions(world)

    code, shown = run_cli_on_a_terminal(
        settings,
        *("export", "--project", str(world.project_id), "--form", "simple"),
        *("--format", "xlsx", "--out", str(tmp_path)),
    )

    assert code == 0, shown
    assert "simple.xlsx [" in shown
    assert "100% 3/3 submissions" in shown
    assert (tmp_path / "simple.xlsx").exists()
