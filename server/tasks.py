"""The Tasks extension (`io.modelcontextprotocol/tasks`, ext-tasks for 2026-07-28) over the job store.

When a 2026-07-28 `tools/call` declares the extension in its per-request capabilities, the call
waits only briefly (PHOTO_MCP_TASK_AFTER, 1 s); a job still running then comes back as a task
(`resultType: "task"`) instead of the wait-then-hand-off result. The task is the job:

    tasks/get     the task's state: working (its job queued or running), input_required (spend
                  consent waiting for the person: inputRequests holds the question), completed
                  (the result the tool would have returned, is_error included), cancelled;
                  failed when the result cannot be produced (a JSON-RPC error). pollIntervalMs
                  is the provider's own poll interval.
    tasks/update  the person's answers (inputResponses): once every outstanding request is
                  answered, the call runs again with them exactly as a retried tools/call would
                  (accept: the job starts and the task follows it; decline: completed with the
                  "nothing was sent" result).
    tasks/cancel  cancel_job: stops polling (YouCam then charges nothing; Aluo charges only on
                  success, so a cancelled Aluo job is not charged unless it had already finished);
                  a task still waiting for consent is cancelled with nothing sent.

Input request keys are unique over a task's life (`r<round>/<resolver key>`). A task belongs to
the principal that started it (OAuth subject, the static token, or the local user): anyone else's
`tasks/*` on its id answers "not found", exactly as for an unknown id.
Requests without the extension keep wait-then-hand-off and `get_job`; handshake-era clients
never see a task. Built on the SDK's public `Extension` / `MethodBinding` API; replace it with
the SDK's own implementation once it ships one.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import time
import weakref
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    InputRequiredResult,
    RequestParams,
    TextContent,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from server import links
from server.auth import caller_identity
from tools.core.db import Database
from tools.core.errors import NotFound
from tools.core.jobs import Job
from tools.core.principals import acting_for
from tools.core.settings import Settings
from tools.runtime import Runtime
from tools.toolkit.run import Call, wait_and_render

EXTENSION_ID = "io.modelcontextprotocol/tasks"
CLIENT_CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
TASK_TTL_MS = 24 * 3600 * 1000
_handoff: ContextVar[bool] = ContextVar("photo_mcp_task_handoff", default=False)
# One row per task. state: "job" (job_id: the job is the task), "input" (waiting for the
# person: detail holds the tool call, its outstanding input requests and the resolver state),
# "done" (detail: the final result, when no job was needed), "cancelled", "failed" (detail: error).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ext_tasks (
    task_id TEXT PRIMARY KEY, job_id TEXT, tool TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, ttl_ms INTEGER, state TEXT NOT NULL, detail TEXT, principal TEXT
)
"""


def _migrate(c: sqlite3.Connection) -> None:
    c.execute(_SCHEMA)
    if "principal" not in {row[1] for row in c.execute("PRAGMA table_info(ext_tasks)")}:
        c.execute("ALTER TABLE ext_tasks ADD COLUMN principal TEXT")


def handoff_budget(settings: Settings) -> float | None:
    """The wait budget of a tool call that may become a task, or None (the configured one)."""
    return min(settings.wait_seconds, settings.task_after) if _handoff.get() else None


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
    """Tasks in the jobs database (every process sharing the data dir sees them)."""

    def __init__(self, runtime: Runtime) -> None:
        self.db = runtime.db
        self.db.call(_migrate)

    async def create(
        self, tool: str, state: str, principal: str | None, *, job_id: str | None = None, detail: Any = None
    ) -> sqlite3.Row:
        task_id = "t_" + secrets.token_urlsafe(24)  # unguessable: the id is the handle
        now = time.time()
        blob = None if detail is None else json.dumps(detail)
        row = (task_id, job_id, tool, now, now, TASK_TTL_MS, state, blob, principal)

        def insert(c: sqlite3.Connection) -> None:
            # Expired tasks go as new ones come (their jobs and results stay, for get_job).
            c.execute("DELETE FROM ext_tasks WHERE ttl_ms IS NOT NULL AND created_at + ttl_ms / 1000.0 < ?", (now,))
            c.execute("INSERT INTO ext_tasks VALUES (?,?,?,?,?,?,?,?,?)", row)

        await self.db.run(insert)
        return await self.get(task_id, principal)

    async def get(self, task_id: str, principal: str | None) -> sqlite3.Row:
        """The task, if `principal` (the caller) made it.

        Raises:
            MCPError: INVALID_PARAMS for an unknown or expired task, or another caller's.
        """
        row = await self.db.run(lambda c: c.execute("SELECT * FROM ext_tasks WHERE task_id=?", (task_id,)).fetchone())
        if row is None or row["principal"] != principal:  # another person's task reads as unknown
            raise MCPError(code=INVALID_PARAMS, message="Failed to retrieve task: Task not found")
        if row["ttl_ms"] is not None and (time.time() - row["created_at"]) * 1000 > row["ttl_ms"]:
            raise MCPError(code=INVALID_PARAMS, message="Failed to retrieve task: Task has expired")
        return row

    async def move(
        self, task_id: str, state: str, *, job_id: str | None = None, detail: Any = None, was: str = ""
    ) -> bool:
        """Set a task's state; with `was`, only from that state (True if this call moved it)."""
        args = [state, job_id, None if detail is None else json.dumps(detail), time.time(), task_id]
        sql = "UPDATE ext_tasks SET state=?, job_id=COALESCE(?, job_id), detail=?, updated_at=? WHERE task_id=?"
        if was:
            sql += " AND state=?"
            args.append(was)
        return bool(await self.db.run(lambda c: c.execute(sql, args).rowcount))


class Tasks(Extension):
    """The Tasks extension; `MCPServer(extensions=[Tasks(server)])` (it re-runs tool calls whose
    spend consent arrives by `tasks/update`)."""

    identifier = EXTENSION_ID

    def __init__(self, server: Any) -> None:
        self._server = server
        self._stores: weakref.WeakKeyDictionary[Database, TaskStore] = weakref.WeakKeyDictionary()

    def methods(self) -> list[MethodBinding]:
        versions = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=versions),
            MethodBinding("tasks/update", TaskUpdateParams, self._update, protocol_versions=versions),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, protocol_versions=versions),
        ]

    def _store(self, runtime: Runtime) -> TaskStore:
        store = self._stores.get(runtime.db)
        if store is None:
            store = self._stores[runtime.db] = TaskStore(runtime)
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
        runtime: Runtime = ctx.lifespan_context
        store = self._store(runtime)
        if isinstance(result, InputRequiredResult):
            # Spend consent (or any other question) rides the task as input_required.
            row = await store.create(params.name, "input", _caller(runtime), detail=_pending(params, result, 1))
        else:
            job_id = _running_job(result)
            if job_id is None:
                return result
            row = await store.create(params.name, "job", _caller(runtime), job_id=job_id)
        return {"resultType": "task", **await self._describe(runtime, row)}

    async def _find(self, runtime: Runtime, task_id: str) -> sqlite3.Row:
        return await self._store(runtime).get(task_id, _caller(runtime))

    async def _describe(self, runtime: Runtime, row: sqlite3.Row) -> dict[str, Any]:
        """The DetailedTask of `row`: status, and its input requests, result or error."""
        base = {
            "taskId": row["task_id"],
            "createdAt": _iso(row["created_at"]),
            "lastUpdatedAt": _iso(row["updated_at"]),
            "ttlMs": row["ttl_ms"],
            "pollIntervalMs": 1000,
        }
        detail = json.loads(row["detail"]) if row["detail"] else None
        state = row["state"]
        if state == "input":
            return base | {
                "status": "input_required",
                "statusMessage": "Waiting for the person to confirm the spend.",
                "inputRequests": detail["requests"],
            }
        if state == "done":
            return base | {"status": "completed", "result": detail}
        if state == "cancelled":
            return base | {"status": "cancelled", "statusMessage": "Cancelled before anything was sent."}
        if state == "working":  # the answers arrived; the call is being started again
            return base | {"status": "working", "statusMessage": "Starting with the person's answer."}
        if state != "job":
            message = (detail or {}).get("message", "The task failed.")
            return base | {"status": "failed", "statusMessage": message, "error": detail}
        try:
            job = await runtime.jobs.get(row["job_id"])
        except NotFound as exc:
            return base | _failure(exc.message)
        task = base | _job_task(job, runtime.settings)
        task["lastUpdatedAt"] = _iso(max(job.updated_at, row["created_at"]))
        if task["status"] == "completed":
            try:
                result = await wait_and_render(Call(runtime), job, 0, cancel_on_abort=False)
            except Exception as exc:  # the result files are gone or unreadable: a JSON-RPC error
                return base | _failure(f"The result cannot be read ({type(exc).__name__}).")
            result = links.attach(result, runtime.settings)
            task["result"] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return task

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        runtime: Runtime = ctx.lifespan_context
        row = await self._find(runtime, params.task_id)
        with acting_for(row["principal"]):  # its job and results are looked up as its owner's
            return await self._describe(runtime, row)

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: TaskUpdateParams) -> HandlerResult:
        """Take the person's answers; once every outstanding request is answered, run the call
        again with them (as a retried `tools/call` would) and let the task follow what it does."""
        runtime: Runtime = ctx.lifespan_context
        store = self._store(runtime)
        row = await self._find(runtime, params.task_id)
        if row["state"] != "input":
            return {}  # nothing outstanding: responses for unknown or answered keys are ignored
        pending = json.loads(row["detail"])
        answers = pending.setdefault("answers", {})
        answers |= {k: v for k, v in params.input_responses.items() if k in pending["requests"]}
        if set(answers) != set(pending["requests"]):
            await store.move(row["task_id"], "input", detail=pending, was="input")
            return {}  # a partial set: still input_required
        if not await store.move(row["task_id"], "working", detail=pending, was="input"):
            return {}  # another update took it
        responses = {pending["keys"][k]: v for k, v in answers.items()}
        call = CallToolRequestParams(
            name=row["tool"],
            arguments=pending["arguments"],
            input_responses=responses,
            request_state=pending["request_state"],
        )
        token = _handoff.set(True)
        try:
            result: Any = await self._server.call_tool(
                call.name,
                call.arguments or {},
                Context(request_context=ctx, mcp_server=self._server, input_params=call),
            )
        except ToolError as exc:  # what the SDK's tools/call handler answers for it too
            result = CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)
        except MCPError as exc:
            await store.move(row["task_id"], "failed", detail=exc.error.model_dump(mode="json", exclude_none=True))
            return {}
        except BaseException:  # the update request was cancelled: never leave the task "working"
            with anyio.CancelScope(shield=True):
                message = "The call was interrupted while starting; call the tool again."
                await store.move(row["task_id"], "failed", detail={"code": INTERNAL_ERROR, "message": message})
            raise
        finally:
            _handoff.reset(token)
        if isinstance(result, InputRequiredResult):
            await store.move(row["task_id"], "input", detail=_pending(call, result, pending["round"] + 1))
        elif (job_id := _running_job(result)) is not None:
            await store.move(row["task_id"], "job", job_id=job_id)
        else:
            await store.move(
                row["task_id"], "done", detail=result.model_dump(by_alias=True, mode="json", exclude_none=True)
            )
        return {}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        runtime: Runtime = ctx.lifespan_context
        store = self._store(runtime)
        row = await self._find(runtime, params.task_id)
        if row["state"] == "input":
            await store.move(row["task_id"], "cancelled", was="input")
        elif row["state"] == "job":
            with contextlib.suppress(NotFound), acting_for(row["principal"]):  # a gone job: nothing to stop
                await runtime.jobs.cancel(row["job_id"])
        return {}


def _caller(runtime: Runtime) -> str | None:
    """The principal of the request being served (None: the local user)."""
    return caller_identity(runtime.settings)[0]


def _pending(call: CallToolRequestParams, result: InputRequiredResult, round_: int) -> dict[str, Any]:
    """What an input_required task keeps: the call, its requests under task-unique keys, the state."""
    requests = {
        f"r{round_}/{key}": request.model_dump(by_alias=True, mode="json", exclude_none=True)
        for key, request in (result.input_requests or {}).items()
    }
    return {
        "arguments": call.arguments or {},
        "requests": requests,
        "keys": {task_key: task_key.split("/", 1)[1] for task_key in requests},
        "request_state": result.request_state,
        "round": round_,
    }


def _running_job(result: Any) -> str | None:
    sc = result.structured_content if isinstance(result, CallToolResult) else None
    if isinstance(sc, dict) and sc.get("status") in ("queued", "running") and sc.get("job_id"):
        return str(sc["job_id"])
    return None


def _job_task(job: Job, settings: Settings) -> dict[str, Any]:
    status = {"queued": "working", "running": "working", "succeeded": "completed", "failed": "completed"}.get(
        job.state, "cancelled"
    )
    message = job.error if job.state in ("failed", "cancelled") and job.error else job.message
    return {"status": status, "statusMessage": message, "pollIntervalMs": poll_interval_ms(settings, job.provider)}


def _failure(message: str) -> dict[str, Any]:
    return {"status": "failed", "statusMessage": message, "error": {"code": INTERNAL_ERROR, "message": message}}
