"""Keeping the HTTP transports answering under slowloris and connection exhaustion.

Two layers, both configured from Settings (PHOTO_MCP_MAX_CONNECTIONS, _MAX_SESSIONS,
_MAX_STREAMS, _HEADER_TIMEOUT, _BODY_TIMEOUT, _KEEP_ALIVE_TIMEOUT):

- `guarded_protocol`: uvicorn's h11 protocol with read deadlines and a connection cap.
  A connection must finish its request headers within the header timeout (408, closed) and
  its body within the body timeout (408, closed). At the connection cap a new connection
  evicts the oldest one that is not serving a request (idle keep-alive or still dribbling
  headers); only when every connection is busy does the newcomer get a 503. The cap stays
  below the process's file-descriptor limit, so accepting `/healthz` never fails on EMFILE.
- `SessionLimits`: ASGI middleware (behind the bearer check) capping open event streams
  (GET /sse, GET /mcp: 503 beyond the cap) and Streamable HTTP sessions, in total and per
  credential (bearer token): at a cap a new session ends the least recently used session
  that has nothing in flight, of the same credential or else of the credential holding the
  most (through the protocol's own DELETE), so ten thousand abandoned sessions cannot lock
  anyone out, and one token cannot push out everybody else's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("photo_mcp.http")
HEALTH_PATHS = frozenset({"/healthz"})
_FD_RESERVE = 64  # descriptors kept free for the database, result files and provider sockets


@dataclass(frozen=True)
class Limits:
    max_connections: int = 500
    header_timeout: float = 15.0
    body_timeout: float = 120.0


def connection_cap(configured: int) -> int:
    """`configured`, lowered to stay under the soft RLIMIT_NOFILE (minus a reserve)."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return configured
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(4, min(configured, soft - _FD_RESERVE))


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": reason.lower().replace(" ", "_"), "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_protocol(limits: Limits) -> type[H11Protocol]:
    """An h11 protocol class for `uvicorn.Config(http=...)` enforcing `limits`."""

    class GuardedH11Protocol(H11Protocol):
        _limits = limits

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline: asyncio.TimerHandle | None = None
            self._deadline_kind = ""
            self._last_active = time.monotonic()
            self._arm("header")
            if len(self.connections) > self._limits.max_connections:
                self._make_room()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._last_active = time.monotonic()
            super().data_received(data)
            self._follow_state()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow_state()

        # -- deadlines ------------------------------------------------------------------
        def _follow_state(self) -> None:
            if self.transport.is_closing():
                return
            state = self.conn.their_state
            if state is h11.IDLE and self._busy():
                self._disarm()  # a response is still going out (pipelining): not reading headers
            elif state is h11.IDLE:
                if self._deadline_kind != "header":
                    self._arm("header")  # the next request's headers are due (keep-alive or pipelined)
            elif state is h11.SEND_BODY:
                if self._deadline_kind != "body":
                    self._arm("body")
            else:
                self._disarm()

        def _arm(self, kind: str) -> None:
            self._disarm()
            seconds = self._limits.header_timeout if kind == "header" else self._limits.body_timeout
            self._deadline = self.loop.call_later(seconds, self._expired)
            self._deadline_kind = kind

        def _disarm(self) -> None:
            deadline = getattr(self, "_deadline", None)
            if deadline is not None:
                deadline.cancel()
            self._deadline = None
            self._deadline_kind = ""

        def _expired(self) -> None:
            kind, self._deadline, self._deadline_kind = self._deadline_kind, None, ""
            if self.transport.is_closing():
                return
            if kind == "header" and self.conn.their_state is not h11.IDLE:
                return
            if kind == "body" and self.conn.their_state is not h11.SEND_BODY:
                return
            if self.cycle is None or not self.cycle.response_started:
                what = "request headers" if kind == "header" else "request body"
                seconds = self._limits.header_timeout if kind == "header" else self._limits.body_timeout
                self.transport.write(
                    _raw_response(408, "Request Timeout", f"the {what} did not arrive within {seconds:g} s")
                )
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            self.transport.close()

        # -- the connection cap -----------------------------------------------------------
        def _busy(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _make_room(self) -> None:
            idle = [c for c in self.connections if c is not self and not getattr(c, "_busy", lambda: True)()]
            if idle:
                oldest = min(idle, key=lambda c: getattr(c, "_last_active", 0.0))
                log.warning("connection cap (%d) reached: closing an idle or slow connection", len(self.connections))
                oldest._disarm()
                oldest.transport.close()
                oldest.connections.discard(oldest)  # gone now, even before its close completes
                return
            log.warning("connection cap reached and every connection is busy: answering 503")
            self.transport.write(
                _raw_response(503, "Service Unavailable", "the server is at its connection limit; retry shortly")
            )
            self._disarm()
            self.transport.close()

    return GuardedH11Protocol


# ---------------------------------------------------------------------------------- ASGI layer
def _json(status: int, error: str, message: str) -> tuple[Message, Message]:
    body = json.dumps({"error": error, "message": message}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


def _owner(headers: dict[bytes, bytes]) -> str:
    """Which credential a request carries (a digest, never the token itself)."""
    scheme, _, credential = headers.get(b"authorization", b"").strip().partition(b" ")
    if not credential.strip():
        return ""
    return hashlib.sha256(scheme.lower() + b" " + credential.strip()).hexdigest()[:16]


@dataclass
class _Session:
    last_used: float
    owner: str = ""  # a digest of the credential that opened it ("" without one)
    in_flight: int = 0


class SessionLimits:
    """Caps open event streams and Streamable HTTP sessions (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_sessions: int,
        max_streams: int,
        max_sessions_per_token: int | None = None,
        mcp_path: str = "/mcp",
    ) -> None:
        self.app = app
        self.max_sessions = max_sessions
        self.per_owner = min(max_sessions, max_sessions_per_token or max_sessions)
        self.max_streams = max_streams
        self.mcp_path = mcp_path
        self.streams = 0
        self.sessions: dict[str, _Session] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", ""), scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        if method == "GET" and (path == "/sse" or path == self.mcp_path):
            if self.streams >= self.max_streams:
                await self._answer(send, 503, "too_many_streams", f"{self.max_streams} event streams are open")
                return
            self.streams += 1
            try:
                await self._session_call(scope, receive, send, headers)
            finally:
                self.streams -= 1
            return
        await self._session_call(scope, receive, send, headers)

    async def _session_call(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        if scope.get("path") != self.mcp_path:
            await self.app(scope, receive, send)
            return
        sid = headers.get(b"mcp-session-id", b"").decode("latin-1")
        if not sid:
            owner = _owner(headers)
            if scope.get("method") == "POST" and not await self._make_room(scope, owner):
                await self._answer(send, 503, "too_many_sessions", "every session slot is in use")
                return
            await self.app(scope, receive, self._learn_session(send, owner))
            return
        session = self.sessions.get(sid)
        if session is None:
            await self.app(scope, receive, send)
            return
        session.in_flight += 1
        session.last_used = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            session.in_flight -= 1
            session.last_used = time.monotonic()
            if scope.get("method") == "DELETE":
                self.sessions.pop(sid, None)

    def _learn_session(self, send: Send, owner: str) -> Send:
        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers") or []:
                    if name.lower() == b"mcp-session-id":
                        self.sessions[value.decode("latin-1")] = _Session(time.monotonic(), owner)
            await send(message)

        return watch

    async def _make_room(self, scope: Scope, owner: str) -> bool:
        """Free a slot for a new session of `owner`; False if every candidate session is busy.

        A credential at its own cap gives up its least recently used idle session; when all
        slots are taken, the credential holding the most sessions gives one up (so one token
        cannot push out everybody else's).
        """
        while True:
            mine = [sid for sid, s in self.sessions.items() if s.owner == owner]
            if len(mine) >= self.per_owner:
                candidates = mine
            elif len(self.sessions) >= self.max_sessions:
                counts: dict[str, int] = {}
                for s in self.sessions.values():
                    counts[s.owner] = counts.get(s.owner, 0) + 1
                idle_owners = {s.owner for s in self.sessions.values() if s.in_flight == 0}
                if not idle_owners:
                    return False
                biggest = max(idle_owners, key=lambda o: counts[o])
                candidates = [sid for sid, s in self.sessions.items() if s.owner == biggest]
            else:
                return True
            idle = [(self.sessions[sid].last_used, sid) for sid in candidates if self.sessions[sid].in_flight == 0]
            if not idle:
                return False
            _, sid = min(idle)
            self.sessions.pop(sid, None)
            await self._delete(scope, sid)
            log.warning("session cap reached: ended the least recently used idle session")

    async def _delete(self, scope: Scope, sid: str) -> None:
        """Terminate `sid` through the transport's own DELETE (nothing of the SDK's internals)."""
        keep = {b"host", b"origin", b"mcp-protocol-version", b"authorization"}
        headers = [(k, v) for k, v in scope.get("headers") or [] if k in keep]
        delete: dict[str, Any] = {
            **{k: v for k, v in scope.items() if k not in ("headers", "method", "query_string", "state")},
            "method": "DELETE",
            "query_string": b"",
            "headers": [*headers, (b"mcp-session-id", sid.encode("latin-1"))],
            "state": dict(scope.get("state") or {}),
        }

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def ignore(message: Message) -> None:
            pass

        try:
            await self.app(delete, receive, ignore)
        except Exception:  # an already-expired session: nothing to end
            log.debug("evicting session failed", exc_info=True)

    @staticmethod
    async def _answer(send: Send, status: int, error: str, message: str) -> None:
        start, body = _json(status, error, message + "; retry shortly")
        await send(start)
        await send(body)
