"""The Tasks extension with real clients: the SDK's `Client` declaring `io.modelcontextprotocol/tasks`
(a `ClientExtension` claiming `resultType: "task"`, polling `tasks/get`) on 2026-07-28, over stdio
and Streamable HTTP, against the fake Aluo: a long call becomes a task, is polled to the result the
tool would have returned, and a task cancelled mid-way is not charged (Aluo charges on success
only). Requests without the extension keep wait-then-hand-off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, ElicitRequestFormParams, Request, RequestParams, Result
from pydantic import ConfigDict

from server.app import build_server
from tests.fakes.aluo import FakeAluo
from tests.fakes.loopback import serve
from tests.support import serve_http, stdio_params
from tests.test_aluo_tools import aluo_settings
from tests.test_consent import Person

EXTENSION = "io.modelcontextprotocol/tasks"
GENERATE = {"prompt": "A red mug on a table"}
NEVER = 10**9  # the fake's polls_until_done while a job must stay running


class TaskHandle(Result):
    """CreateTaskResult (`resultType: "task"`)."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    poll_interval_ms: int | None = None
    ttl_ms: int | None = None
    created_at: str
    last_updated_at: str


class TaskState(Result):
    """GetTaskResult: a DetailedTask."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    status: Literal["working", "input_required", "completed", "failed", "cancelled"]
    status_message: str | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskIdParams(RequestParams):
    task_id: str


class TasksGet(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"  # Mcp-Name over Streamable HTTP


class TasksCancel(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class TaskUpdateParams(TaskIdParams):
    input_responses: dict[str, Any]


class TasksUpdate(Request[TaskUpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param = "taskId"


class Ack(Result):
    model_config = ConfigDict(extra="allow")


class TasksClient(ClientExtension):
    """The client side of the extension: declares it and finishes a task by polling `tasks/get`."""

    identifier = EXTENSION

    def __init__(self, person: Person | None = None) -> None:
        self.person = person  # answers input_required requests (spend consent)
        self.handles: list[TaskHandle] = []
        self.polls: list[TaskState] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=self.finish)]

    async def finish(self, handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
        self.handles.append(handle)
        while True:
            state = await get(ctx.session, handle.task_id)
            self.polls.append(state)
            if state.status == "completed":
                assert state.result is not None
                return CallToolResult.model_validate(state.result)
            if state.status in ("failed", "cancelled"):
                raise RuntimeError(f"task {state.status}: {state.status_message}")
            if state.status == "input_required" and self.person is not None:
                requests: dict[str, Any] = state.model_extra["inputRequests"]  # type: ignore[index]
                answers = {}
                for key, request in requests.items():
                    assert request["method"] == "elicitation/create"
                    params = ElicitRequestFormParams.model_validate(request["params"])
                    answer = await self.person(None, params)  # type: ignore[arg-type]
                    answers[key] = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
                update = TaskUpdateParams(task_id=handle.task_id, input_responses=answers)
                await ctx.session.send_request(TasksUpdate(params=update), Ack)
                continue
            await anyio.sleep((state.poll_interval_ms or 100) / 1000)


async def get(session: Any, task_id: str) -> TaskState:
    return await session.send_request(TasksGet(params=TaskIdParams(task_id=task_id)), TaskState)


async def cancel(session: Any, task_id: str) -> None:
    await session.send_request(TasksCancel(params=TaskIdParams(task_id=task_id)), Ack)


@asynccontextmanager
async def aluo(**knobs: Any) -> AsyncIterator[tuple[FakeAluo, str]]:
    fake = FakeAluo(**knobs)
    async with serve(fake.app) as base:
        yield fake, base


@asynccontextmanager
async def connect(
    transport: str, tmp_path: Path, fake: FakeAluo, base: str, ext: TasksClient | None, mode: str = "2026-07-28"
) -> AsyncIterator[Client]:
    kwargs: dict[str, Any] = {"mode": mode, "extensions": [ext] if ext is not None else None}
    if ext is not None and ext.person is not None:
        kwargs["elicitation_callback"] = ext.person  # the client declares elicitation
    if transport == "stdio":
        params = stdio_params(
            tmp_path,
            ALUO_API_KEY=fake.api_key,
            ALUO_BASE_URL=FakeAluo.api_base(base),
            PHOTO_MCP_ALUO_POLL_INTERVAL="0.1",
        )
        async with Client(params, **kwargs) as client:
            yield client
    elif transport == "http":
        settings = aluo_settings(tmp_path, fake, base, aluo_poll_interval=0.1)
        async with serve_http(build_server(settings), settings) as url, Client(url + "/mcp", **kwargs) as client:
            yield client
    else:
        settings = aluo_settings(tmp_path, fake, base, aluo_poll_interval=0.1, wait_seconds=1)
        async with Client(build_server(settings), **kwargs) as client:
            yield client


async def until_task(client: Client, ext: TasksClient, fake: FakeAluo) -> CallToolResult:
    """Call generate_product_photo; once it is a task (the fake holds the job), let the job finish."""
    async with anyio.create_task_group() as tg:
        out: list[CallToolResult] = []

        async def run() -> None:
            out.append(await client.call_tool("generate_product_photo", GENERATE))

        tg.start_soon(run)
        while not ext.polls:  # noqa: ASYNC110 - the claim resolver records each poll
            await anyio.sleep(0.01)
        fake.polls_until_done = 0
    return out[0]


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_long_call_becomes_a_task_polled_to_the_tools_own_result(tmp_path: Path, transport: str) -> None:
    async with aluo(polls_until_done=NEVER) as (fake, base):
        ext = TasksClient()
        with anyio.fail_after(60):
            async with connect(transport, tmp_path / "t", fake, base, ext) as client:
                via_task = await until_task(client, ext, fake)
            # The same call without the extension, for comparison (it finishes inline).
            async with connect(transport, tmp_path / "p", fake, base, None) as client:
                plain = await client.call_tool("generate_product_photo", GENERATE)
    (handle,) = ext.handles
    assert handle.status == "working" and handle.poll_interval_ms == 100  # Aluo's own poll interval
    assert handle.task_id.startswith("t_") and len(handle.task_id) > 30  # unguessable
    assert ext.polls[0].status == "working" and ext.polls[-1].status == "completed"
    assert not via_task.is_error, via_task.content
    ours, theirs = via_task.structured_content, plain.structured_content
    assert ours["status"] == theirs["status"] == "succeeded"
    assert set(ours) == set(theirs) and len(ours["images"]) == len(theirs["images"]) == 1
    assert [b.type for b in via_task.content] == [b.type for b in plain.content] == ["text", "resource_link", "image"]
    assert ours["job_id"] != theirs["job_id"]
    assert [(c.amount, c.what) for c in fake.charges] == [(40, "generate"), (40, "generate")]


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_task_cancelled_mid_way_is_not_charged(tmp_path: Path, transport: str) -> None:
    async with aluo(polls_until_done=NEVER) as (fake, base):
        ext = TasksClient()
        with anyio.fail_after(60):
            async with connect(transport, tmp_path, fake, base, ext) as client:
                handle = await client.session.call_tool("generate_product_photo", GENERATE, allow_claimed=True)
                assert isinstance(handle, TaskHandle) and handle.status == "working"
                assert (await get(client.session, handle.task_id)).status == "working"
                await cancel(client.session, handle.task_id)
                state = await get(client.session, handle.task_id)
                while state.status == "working":  # cancellation is eventually consistent
                    await anyio.sleep(0.05)
                    state = await get(client.session, handle.task_id)
                fake.polls_until_done = 0  # had it kept polling, the next poll would have charged
                jobs = await client.call_tool("check_credits", {"provider": "aluo"})
    assert state.status == "cancelled" and state.result is None
    assert fake.charges == []
    assert not jobs.is_error


async def test_without_the_extension_the_call_hands_off_to_get_job(tmp_path: Path) -> None:
    async with aluo(polls_until_done=NEVER) as (fake, base):
        with anyio.fail_after(60):
            async with connect("memory", tmp_path, fake, base, None) as client:
                handoff = await client.call_tool("generate_product_photo", GENERATE)
                assert handoff.structured_content["status"] == "running"
                assert "get_job" in handoff.content[0].text
                fake.polls_until_done = 0
                done = await client.call_tool(
                    "get_job", {"job_id": handoff.structured_content["job_id"], "wait_seconds": 30}
                )
    assert done.structured_content["status"] == "succeeded"


async def test_handshake_era_clients_never_get_a_task(tmp_path: Path) -> None:
    async with aluo(polls_until_done=NEVER) as (fake, base):
        ext = TasksClient()
        with anyio.fail_after(60):
            async with connect("memory", tmp_path, fake, base, ext, mode="legacy") as client:
                handoff = await client.call_tool("generate_product_photo", GENERATE)
                fake.polls_until_done = 0
    assert handoff.structured_content["status"] == "running" and ext.handles == []


async def test_quick_calls_return_inline_and_unknown_tasks_are_invalid_params(tmp_path: Path) -> None:
    async with aluo() as (fake, base):
        ext = TasksClient()
        settings = aluo_settings(tmp_path, fake, base, task_after=30)  # "quick" by the setting, not the clock
        with anyio.fail_after(60):
            async with Client(build_server(settings), mode="2026-07-28", extensions=[ext]) as client:
                quick = await client.call_tool("generate_background", {"prompt": "a beach"})
                with pytest.raises(MCPError) as unknown:
                    await get(client.session, "t_nope")
    assert not quick.is_error and ext.handles == []  # done within the inline wait: no task
    assert unknown.value.error.code == INVALID_PARAMS and "not found" in unknown.value.error.message


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_spend_consent_rides_the_task_as_input_required(tmp_path: Path, transport: str) -> None:
    async with aluo() as (fake, base):
        # Decline: the task waits in input_required, the answer comes by tasks/update, nothing is sent.
        no = TasksClient(Person("decline"))
        with anyio.fail_after(60):
            async with connect(transport, tmp_path / "n", fake, base, no) as client:
                declined = await client.call_tool("generate_product_photo", GENERATE)
        assert no.handles[0].status == "input_required"
        assert [p.status for p in no.polls] == ["input_required", "completed"]
        question = no.polls[0].model_extra["inputRequests"]  # type: ignore[index]
        (key,) = question
        assert key.startswith("r1/") and "40 credits" in question[key]["params"]["message"]
        assert declined.structured_content["status"] == "cancelled" and "declined" in declined.content[0].text
        assert fake.requests == [] and fake.charges == []

        # Accept: the job starts on the answer, the task follows it, and Aluo charges once.
        yes = TasksClient(Person("accept"))
        with anyio.fail_after(60):
            async with connect(transport, tmp_path / "y", fake, base, yes) as client:
                accepted = await client.call_tool("generate_product_photo", GENERATE)
        assert len(yes.person.asked) == 1 and yes.polls[0].status == "input_required"
        assert not accepted.is_error and accepted.structured_content["status"] == "succeeded"
        assert [(c.amount, c.what) for c in fake.charges] == [(40, "generate")]


async def test_a_task_waiting_for_consent_can_be_cancelled(tmp_path: Path) -> None:
    async with aluo() as (fake, base):
        ext = TasksClient(Person("accept"))
        with anyio.fail_after(60):
            async with connect("memory", tmp_path, fake, base, ext) as client:
                handle = await client.session.call_tool("generate_product_photo", GENERATE, allow_claimed=True)
                assert isinstance(handle, TaskHandle) and handle.status == "input_required"
                await cancel(client.session, handle.task_id)
                state = await get(client.session, handle.task_id)
    assert state.status == "cancelled" and fake.requests == []


async def test_a_job_that_fails_completes_the_task_with_the_tools_error_result(tmp_path: Path) -> None:
    """Spec: a tool result with isError is `completed`; `failed` is for JSON-RPC errors only."""
    async with aluo(polls_until_done=NEVER, fail_jobs=True) as (fake, base):
        ext = TasksClient()
        with anyio.fail_after(60):
            async with connect("memory", tmp_path, fake, base, ext) as client:
                result = await until_task(client, ext, fake)
    assert ext.polls[-1].status == "completed"
    assert result.is_error and result.structured_content["status"] == "failed"
    assert fake.charges == []
