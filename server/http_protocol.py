"""uvicorn's h11 protocol with a deadline for the request head.

uvicorn closes idle keep-alive connections, but once a client has sent the first
byte of a request it waits for the rest of the head as long as the client likes:
a few hundred connections trickling one header byte a minute would hold every
socket. Here a request's head (request line and headers) must be complete within
``HEAD_SECONDS`` of its first byte, or of the connection's opening; the body is
not timed (phones on slow networks send photos for minutes).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_SECONDS = 20.0
# h11 refuses a request head larger than this (uvicorn then answers 400): it
# bounds both the size and the number of headers.
MAX_HEAD_BYTES = 16 * 1024


class TimedH11Protocol(H11Protocol):
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # still waiting for (the rest of) a head
        else:
            self._disarm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
