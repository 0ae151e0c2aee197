"""uvicorn's HTTP/1.1 protocol with a deadline for reading each request.

uvicorn closes a connection that idles *between* requests (timeout_keep_alive) but
never one that sends nothing after connecting, or sends its request a trickle at a
time: a few hundred such sockets would hold the server's connections forever. Here
every request has `read_timeout_s` to arrive whole, counted from the connection's
opening, or from its first byte on a kept-alive connection, or from the end of the
answer before it when it came pipelined; past it the connection is closed. Answers are not timed:
a slow synthesis or a long Gradio event stream is the server's time, not the client's.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger("service.http")


class RequestDeadlineProtocol(H11Protocol):
    read_timeout_s: float = 10.0  # set per server by with_read_timeout()

    def __init__(self, config: Config, server_state: ServerState, app_state: dict,
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._read_deadline is None and self._reading():
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if not self._reading():
            self._disarm()  # read whole (or the connection is done): the rest is the server's time

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request may have arrived with the last (pipelined): its clock starts now.
        # A connection idle after an answer is uvicorn's keep-alive timer's.
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self._arm()
        else:
            self._disarm()

    def _reading(self) -> bool:
        """Whether a request is being read: not yet begun, or its head read and its body not."""
        return self.conn.their_state is h11.IDLE or self.conn.their_state is h11.SEND_BODY

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # closed already, or handed over (a WebSocket upgrade)
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info("closing a connection from %s: no whole request within %.0f s", peer, self.read_timeout_s)
        self.transport.close()


def with_read_timeout(read_timeout_s: float) -> type[RequestDeadlineProtocol]:
    """The protocol class to give uvicorn (`http=`), reading each request within `read_timeout_s`."""
    return type("RequestDeadlineProtocol", (RequestDeadlineProtocol,), {"read_timeout_s": read_timeout_s})
