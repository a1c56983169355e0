"""Slow clients: a request head that never completes loses its connection."""

from __future__ import annotations

import asyncio

from uvicorn.config import Config
from uvicorn.server import ServerState

from server.http_protocol import MAX_HEAD_BYTES, TimedH11Protocol


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.written = b""

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("192.0.2.1", 5000), "sockname": ("127.0.0.1", 8383)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("no request should reach the app")


def connect() -> tuple[TimedH11Protocol, Transport]:
    config = Config(app=app, h11_max_incomplete_event_size=MAX_HEAD_BYTES, lifespan="off")
    protocol = TimedH11Protocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


async def test_a_head_trickled_past_its_deadline_closes_the_connection() -> None:
    protocol, transport = connect()
    assert protocol._head_timer is not None  # armed from the moment of connection
    protocol.data_received(b"GET /v1/projects HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    protocol._head_too_slow()  # what the timer does when it fires
    assert transport.closed
    protocol.connection_lost(None)


async def test_a_complete_head_stops_the_clock() -> None:
    protocol, transport = connect()
    protocol.data_received(b"POST /v1/projects HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    assert protocol._head_timer is None
    protocol._head_too_slow()
    assert not transport.closed
    protocol.connection_lost(None)


async def test_an_oversized_head_is_refused() -> None:
    protocol, transport = connect()
    protocol.data_received(b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * (MAX_HEAD_BYTES // 8 + 1))
    assert transport.written.startswith(b"HTTP/1.1 400")
    protocol.connection_lost(None)
