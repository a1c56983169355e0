"""The test services start, answer, stop, and leave nothing behind."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

import asyncpg
import pytest

from tests.services import (
    DATABASE_URL_VARIABLE,
    free_port,
    moto_s3_server,
    postgres_cluster,
    process_is_gone,
)


def test_free_port_can_be_bound() -> None:
    port = free_port()

    with socket.socket() as server:
        server.bind(("127.0.0.1", port))


async def test_postgres_cluster_starts_accepts_connections_and_is_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)

    with postgres_cluster() as url:
        assert url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        connection = await asyncpg.connect(dsn)
        try:
            assert await connection.fetchval("SELECT current_database()") == "homeward"
            assert await connection.fetchval("SHOW fsync") == "off"
            data_dir = Path(await connection.fetchval("SHOW data_directory"))
        finally:
            await connection.close()
        postmaster_pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])

    assert not data_dir.parent.exists()
    assert process_is_gone(postmaster_pid)
    with pytest.raises(ConnectionRefusedError):
        await asyncpg.connect(dsn, timeout=5)


def test_postgres_cluster_cleans_up_when_the_body_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)
    ports: list[int] = []

    def fail_inside_the_cluster() -> None:
        with postgres_cluster() as url:
            ports.append(int(url.rsplit(":", 1)[1].split("/")[0]))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside_the_cluster()

    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", ports[0]), timeout=2),
    ):
        pass


def test_postgres_cluster_uses_the_given_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    given = "postgresql+asyncpg://someone@db.example:5432/elsewhere"
    monkeypatch.setenv(DATABASE_URL_VARIABLE, given)

    with postgres_cluster() as url:
        assert url == given


def test_moto_s3_server_answers_http_and_stops() -> None:
    with moto_s3_server() as endpoint:
        host, port = endpoint.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.request("GET", "/")
            assert connection.getresponse().status == 200
        finally:
            connection.close()

    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((host, int(port)), timeout=2),
    ):
        pass
