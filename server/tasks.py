"""The Tasks extension (`io.modelcontextprotocol/tasks`, ext-tasks for 2026-07-28) over the job store.

When a 2026-07-28 `tools/call` declares the extension in its per-request capabilities, the call
waits only briefly (`TASK_INLINE_S`); a job still running then comes back as a task
(`resultType: "task"`) instead of the wait-then-hand-off result. The task is the job:

    tasks/get     the job's state: working (queued, running), completed (the result the tool
                  would have returned, is_error included), cancelled; failed when the result
                  cannot be produced (a JSON-RPC error). pollIntervalMs is the provider's own
                  poll interval.
    tasks/cancel  cancel_job: stops polling (YouCam then charges nothing; Aluo charges only on
                  success, so a cancelled Aluo job is not charged unless it had already finished).
    tasks/update  accepted and acknowledged: spend consent is asked before the task is created
                  (the spec's SHOULD: input rounds resolve synchronously first), so a photo-mcp
                  task never waits in input_required.

Requests without the extension keep wait-then-hand-off and `get_job`; handshake-era clients
never see a task. Built on the SDK's public `Extension` / `MethodBinding` API; replace it with
the SDK's own implementation once it ships one.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, CallToolRequestParams, CallToolResult, RequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from server import links
from tools.core.errors import NotFound
from tools.core.jobs import Job
from tools.core.settings import Settings
from tools.runtime import Runtime
from tools.toolkit.run import Call, wait_and_render

EXTENSION_ID = "io.modelcontextprotocol/tasks"
CLIENT_CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
TASK_INLINE_S = 1.0  # a Tasks request waits this long at most before its job becomes a task
TASK_TTL_MS = 24 * 3600 * 1000
_handoff: ContextVar[bool] = ContextVar("photo_mcp_task_handoff", default=False)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, tool TEXT NOT NULL,
    created_at REAL NOT NULL, ttl_ms INTEGER
)
"""


def handoff_budget(settings: Settings) -> float | None:
    """The wait budget of a tool call that may become a task, or None (the configured one)."""
    return min(settings.wait_seconds, TASK_INLINE_S) if _handoff.get() else None


def declares_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request itself declares the extension (a task is never sent otherwise)."""
    meta = (ctx.params or {}).get("_meta") or {}
    caps = meta.get(CLIENT_CAPABILITIES_META) if isinstance(meta, dict) else None
    if isinstance(caps, dict):
        return EXTENSION_ID in (caps.get("extensions") or {})
    declared = ctx.session.client_capabilities
    return declared is not None and EXTENSION_ID in (declared.extensions or {})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def poll_interval_ms(settings: Settings, provider: str) -> int:
    """The provider's own poll interval: polling us faster than it polls the provider gains nothing."""
    seconds = {
        "aluo": settings.aluo_poll_interval,
        "removedo": settings.removedo_poll_interval,
        "youcam": min(1.0, settings.youcam_max_poll_gap),  # its answers suggest ~1 s
    }.get(provider, 1.0)
    return max(50, round(seconds * 1000))


class TaskIdParams(RequestParams):
    task_id: str = Field(max_length=200)


class TaskUpdateParams(TaskIdParams):
    input_responses: dict[str, Any] = Field(default_factory=dict)


class TaskStore:
    """Task id -> job id, in the jobs database (every process sharing the data dir sees it)."""

    def __init__(self, runtime: Runtime) -> None:
        self.db = runtime.db
        self.db.call(lambda c: c.execute(_SCHEMA))

    async def create(self, job_id: str, tool: str) -> tuple[str, float]:
        task_id = "t_" + secrets.token_urlsafe(24)  # unguessable: the id is the handle
        now = time.time()
        await self.db.run(
            lambda c: c.execute("INSERT INTO tasks VALUES (?,?,?,?,?)", (task_id, job_id, tool, now, TASK_TTL_MS))
        )
        return task_id, now

    async def get(self, task_id: str) -> sqlite3.Row:
        """Raises:
        MCPError: INVALID_PARAMS for an unknown or expired task.
        """
        row = await self.db.run(lambda c: c.execute("SELECT * FROM tasks WHERE task_id=?", (task_id,)).fetchone())
        if row is None:
            raise MCPError(code=INVALID_PARAMS, message="Failed to retrieve task: Task not found")
        if row["ttl_ms"] is not None and (time.time() - row["created_at"]) * 1000 > row["ttl_ms"]:
            raise MCPError(code=INVALID_PARAMS, message="Failed to retrieve task: Task has expired")
        return row


class Tasks(Extension):
    """The Tasks extension; `MCPServer(extensions=[Tasks()])`."""

    identifier = EXTENSION_ID

    def __init__(self) -> None:
        self._stores: dict[int, TaskStore] = {}

    def methods(self) -> list[MethodBinding]:
        versions = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=versions),
            MethodBinding("tasks/update", TaskUpdateParams, self._update, protocol_versions=versions),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, protocol_versions=versions),
        ]

    def _store(self, runtime: Runtime) -> TaskStore:
        store = self._stores.get(id(runtime.db))
        if store is None:
            store = self._stores[id(runtime.db)] = TaskStore(runtime)
        return store

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS or not declares_tasks(ctx):
            return await call_next(ctx)
        token = _handoff.set(True)
        try:
            result = await call_next(ctx)
        finally:
            _handoff.reset(token)
        job_id = _running_job(result)
        if job_id is None:
            return result
        runtime: Runtime = ctx.lifespan_context
        job = await runtime.jobs.get(job_id)
        task_id, created = await self._store(runtime).create(job_id, params.name)
        return {"resultType": "task", **_task(task_id, created, job, runtime.settings)}

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        runtime: Runtime = ctx.lifespan_context
        row = await self._store(runtime).get(params.task_id)
        try:
            job = await runtime.jobs.get(row["job_id"])
        except NotFound as exc:
            return _failed(row, exc.message)
        task = _task(row["task_id"], row["created_at"], job, runtime.settings)
        if task["status"] == "completed":
            try:
                result = await wait_and_render(Call(runtime), job, 0, cancel_on_abort=False)
            except Exception as exc:  # the result files are gone or unreadable: a JSON-RPC error
                return _failed(row, f"The result cannot be read ({type(exc).__name__}).")
            result = links.attach(result, runtime.settings)
            task["result"] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return task

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: TaskUpdateParams) -> HandlerResult:
        await self._store(ctx.lifespan_context).get(params.task_id)
        return {}  # no photo-mcp task asks for input: every response is for a key not outstanding

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        runtime: Runtime = ctx.lifespan_context
        row = await self._store(runtime).get(params.task_id)
        with contextlib.suppress(NotFound):  # the job row is gone: nothing left to stop
            await runtime.jobs.cancel(row["job_id"])
        return {}


def _running_job(result: Any) -> str | None:
    sc = result.structured_content if isinstance(result, CallToolResult) else None
    if isinstance(sc, dict) and sc.get("status") in ("queued", "running") and sc.get("job_id"):
        return str(sc["job_id"])
    return None


def _task(task_id: str, created: float, job: Job, settings: Settings) -> dict[str, Any]:
    status = {"queued": "working", "running": "working", "succeeded": "completed", "failed": "completed"}.get(
        job.state, "cancelled"
    )
    message = job.error if job.state in ("failed", "cancelled") and job.error else job.message
    return {
        "taskId": task_id,
        "status": status,
        "statusMessage": message,
        "createdAt": _iso(created),
        "lastUpdatedAt": _iso(max(job.updated_at, created)),
        "ttlMs": TASK_TTL_MS,
        "pollIntervalMs": poll_interval_ms(settings, job.provider),
    }


def _failed(row: sqlite3.Row, message: str) -> dict[str, Any]:
    now = _iso(time.time())
    return {
        "taskId": row["task_id"],
        "status": "failed",
        "statusMessage": message,
        "createdAt": _iso(row["created_at"]),
        "lastUpdatedAt": now,
        "ttlMs": row["ttl_ms"],
        "error": {"code": INTERNAL_ERROR, "message": message},
    }
