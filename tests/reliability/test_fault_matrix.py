"""The fault matrix: every provider operation × every fault a provider or the network can throw.

Each case serves a fake provider on 127.0.0.1 behind a `FaultProxy`, arms one fault, runs the
tool once through the in-memory MCP client, and checks what a user and the provider see:

- the tool result: success after a safe retry, or a clear error naming the cause and saying
  whether credits were charged — and that statement must be TRUE of the fake's ledger
  ("nothing was charged" only when the fake charged nothing);
- the fake's ledger: at most one piece of paid work created and at most one charge (never a
  double charge), with the exact amount expected for the case;
- the output dir: the result file on success; no file at all on failure; never a `.photo-mcp-tmp-*`.

Count: `pytest tests/reliability/test_fault_matrix.py -q` — every case is one fault tried; a
pass is one fault survived.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.removedo import FakeRemovedo
from tests.fakes.youcam import FakeYouCam
from tests.reliability import FaultProxy, Rule, result_files, temp_files, unused_port
from tools.core.settings import Settings

TIMEOUT = 1.0  # PHOTO_MCP_PROVIDER_TIMEOUT for every case
YOUCAM_POLL_TIMEOUT = 2.0  # YouCam polls use max(2 s, YOUCAM_MAX_POLL_GAP), not the provider timeout
V1 = "/s2s/v1.0"
HTML = b"<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>"
BROKEN_JSON = b'{"code": 0, "success": true, "data": {"taskId": "edit_1'

# What the message tells the user about credits: it must say one or the other, and be right.
NOTHING_CHARGED = re.compile(
    r"nothing was charged|no credits were (charged|consumed)|refunds the credit|charged nothing", re.I
)
MAYBE_CHARGED = re.compile(r"may have|may still|check credits|was charged|already charged|charged 1 credit", re.I)


# ----------------------------------------------------------------------------------- operations
@dataclass(frozen=True)
class Op:
    """One paid provider operation under test, and where its requests go."""

    id: str
    provider: str
    tool: str
    submit: tuple[str, str]  # (method, path) of the POST that creates paid work
    poll: tuple[str, str] | None  # (method, path prefix) of the status poll; None: synchronous
    download: str  # path prefix of result downloads
    price: float  # what the fake charges on success

    def args(self, photo: str) -> dict[str, Any]:
        if self.tool == "edit_photo":
            return {"prompt": "make it blue", "images": [photo]}
        if self.tool == "enhance_photo":
            return {"image": photo, "scale": 2, "provider": self.provider}
        return {"image": photo, "provider": self.provider}


ALUO_RBG = Op("aluo-remove_background", "aluo", "remove_background", ("POST", "/api/remove-bg"), None, "/cdn/", 1)
ALUO_EDIT = Op(
    "aluo-edit_photo",
    "aluo",
    "edit_photo",
    ("POST", "/api/photo-editor/generate"),
    ("GET", "/api/photo-editor/status"),
    "/cdn/",
    40,
)
YOUCAM = Op(
    "youcam-enhance_photo",
    "youcam",
    "enhance_photo",
    ("POST", f"{V1}/task/enhance"),
    ("GET", f"{V1}/task/enhance"),
    "/results/",
    1,
)
REMOVEDO = Op(
    "removedo-remove_background",
    "removedo",
    "remove_background",
    ("POST", "/api/v1/remove-bg"),
    ("GET", "/api/v1/jobs/"),
    "/outputs/",
    1,
)
OPS = (ALUO_RBG, ALUO_EDIT, YOUCAM, REMOVEDO)
Fake = FakeAluo | FakeYouCam | FakeRemovedo


def new_fake(op: Op, **knobs: Any) -> Fake:
    if op.provider == "aluo":
        return FakeAluo(polls_until_done=2, **knobs)
    if op.provider == "youcam":
        return FakeYouCam(**({"polling_interval_ms": 20, "polls_until_done": 2} | knobs))
    return FakeRemovedo(polls_until_done=2, **knobs)


def provider_settings(op: Op, fake: Fake, base: str) -> dict[str, Any]:
    if isinstance(fake, FakeAluo):
        return {
            "aluo_api_key": fake.api_key,
            "aluo_base_url": FakeAluo.api_base(base),
            "aluo_poll_interval": 0.02,
        }
    if isinstance(fake, FakeYouCam):
        return {"youcam_api_key": fake.client_id, "youcam_secret_key": fake.secret_key, "youcam_base_url": base}
    return {"REMOVEDO_API_KEY": fake.api_key, "REMOVEDO_BASE_URL": base, "removedo_poll_interval": 0.02}


def created(op: Op, fake: Fake) -> int:
    """Pieces of paid work the provider created (tasks, jobs, or charged synchronous calls)."""
    if isinstance(fake, FakeAluo):
        return len(fake.jobs) if op is ALUO_EDIT else sum(c.amount > 0 for c in fake.charges)
    if isinstance(fake, FakeYouCam):
        return len(fake.tasks)
    return len(fake.jobs)


def charges(fake: Fake) -> list[float]:
    """Every charge the provider booked (refunds negative)."""
    return [c.amount for c in fake.charges]


def submits(op: Op, fake: Fake) -> int:
    method, path = op.submit
    return sum(r.method == method and r.path == path for r in fake.requests)


# ------------------------------------------------------------------------------------- cases
@dataclass
class Env:
    op: Op
    fake: Fake
    proxy: FaultProxy
    client: Client | None = None
    rules: list[Rule] = field(default_factory=list)  # proxy faults that must have fired

    def fail(self, path: str, status: int, **kw: Any) -> None:
        """The fake's own fault knob: answer the next request(s) under `path` with `status`."""
        self.fake.fail_next(path, status, **kw)

    def inject(self, method: str, path: str, action: str, **kw: Any) -> None:
        self.rules.append(self.proxy.inject(method, path, action, **kw))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Expect:
    ok: bool
    fragments: tuple[str, ...] = ()  # the cause, as the error message must name it
    charged: float | None = None  # net amount the fake booked (None: the op's price on success)
    created: int = 1  # paid work created at the provider
    submits: int | None = None  # paid POSTs that reached the provider, when the case pins it


OK = Expect(ok=True)
Arm = Callable[[Env], Awaitable[None] | None]


@dataclass(frozen=True)
class Case:
    op: Op
    fault: str
    expect: Expect
    arm: Arm | None = None
    knobs: dict[str, Any] = field(default_factory=dict)  # fake constructor knobs
    settings: dict[str, Any] = field(default_factory=dict)  # settings overrides ("REFUSED" = dead URL)

    @property
    def id(self) -> str:
        return f"{self.op.id}:{self.fault}"


def err(*fragments: str, charged: float = 0, created: int = 0, submits: int | None = None) -> Expect:
    return Expect(ok=False, fragments=fragments, charged=charged, created=created, submits=submits)


def _cases() -> list[Case]:
    out: list[Case] = []

    def add(op: Op, fault: str, expect: Expect, arm: Arm | None = None, **kw: Any) -> None:
        out.append(Case(op, fault, expect, arm, **kw))

    for op in OPS:
        sp = op.submit[1]
        aluo, youcam, removedo = op.provider == "aluo", op.provider == "youcam", op.provider == "removedo"

        # -- rate limits: a 429 is a refusal, so even paid POSTs are retried
        add(op, "429+Retry-After", OK, lambda e, sp=sp: e.fail(sp, 429, headers={"Retry-After": "1"}))
        add(op, "429-no-Retry-After", OK, lambda e, sp=sp: e.fail(sp, 429, headers={}))
        add(
            op,
            "429-persistent",
            err("rate limiting", submits=4),
            lambda e, sp=sp: e.fail(sp, 429, times=10, headers={"Retry-After": "0"}),
        )

        # -- 5xx on the paid POST: re-sent only where it is provably safe (YouCam's request_id)
        for status in (500, 502, 503):
            expect = OK if youcam else err(f"HTTP {status}", submits=1)
            add(op, f"submit-{status}", expect, lambda e, sp=sp, s=status: e.fail(sp, s))
            if op.poll is not None:
                add(op, f"poll-{status}", OK, lambda e, s=status: e.inject(*e.op.poll, "replace", status=s, body=HTML))

        # -- the network
        add(op, "connection-refused", err("unreachable", "ConnectError", submits=0), settings={"REFUSED": True})
        # The request never reached the provider, but a client cannot tell that from a reset after
        # it did: a paid POST is not re-sent and the message says it "may have been processed".
        lost = OK if youcam else err("failed mid-request", submits=0)
        add(op, "reset-before-submit-arrives", lost, lambda e: e.inject(*e.op.submit, "drop_before"))
        # The provider did the work; only its answer is lost. Aluo remove-bg charges at call time and
        # Removedo at submit (the server cannot know, so it must say "may have"); an Aluo edit or a
        # YouCam task is charged only on success, and a never-polled task never succeeds.
        processed = {"aluo-remove_background": 1, "aluo-edit_photo": 0, "removedo-remove_background": 1}
        if youcam:
            add(op, "reset-after-submit-processed", OK, lambda e: e.inject(*e.op.submit, "drop_after"))
            add(op, "read-timeout-on-submit", OK, lambda e: e.inject(*e.op.submit, "hold", seconds=TIMEOUT + 1))
        else:
            charged = processed[op.id]
            add(
                op,
                "reset-after-submit-processed",
                err("failed mid-request", "ReadError", charged=charged, created=1, submits=1),
                lambda e: e.inject(*e.op.submit, "drop_after"),
            )
            add(
                op,
                "read-timeout-on-submit",
                err("ReadTimeout", "not re-sent", charged=charged, created=1, submits=1),
                lambda e: e.inject(*e.op.submit, "hold", seconds=TIMEOUT + 1),
            )
        if op.poll is not None:
            add(op, "reset-on-poll", OK, lambda e: e.inject(*e.op.poll, "drop_before"))
            hold = (YOUCAM_POLL_TIMEOUT if youcam else TIMEOUT) + 0.5
            add(op, "read-timeout-on-poll", OK, lambda e, h=hold: e.inject(*e.op.poll, "hold", seconds=h))

        def slow(e: Env) -> None:  # every step answers just inside the timeout
            e.inject(*e.op.submit, "hold", seconds=TIMEOUT * 0.6)
            if e.op.poll is not None:
                e.inject(*e.op.poll, "hold", seconds=TIMEOUT * 0.6)
            e.inject("GET", e.op.download, "hold", seconds=TIMEOUT * 0.6)

        add(op, "slow-near-timeout", OK, slow)

        # -- answers that are not what was promised (after the provider processed the request)
        # YouCam asks again with the same request_id and gets the same task; the others cannot.
        garbled = {
            "aluo-remove_background": err("not its usual JSON envelope", charged=1, created=1, submits=1),
            "aluo-edit_photo": err("not its usual JSON envelope", charged=0, created=1, submits=1),
            "youcam-enhance_photo": OK,
            "removedo-remove_background": err("returned no jobId", charged=1, created=1, submits=1),
        }[op.id]
        add(op, "malformed-json-on-submit", garbled, lambda e: e.inject(*e.op.submit, "replace", body=BROKEN_JSON))
        add(
            op,
            "html-page-on-submit",
            garbled,
            lambda e: e.inject(*e.op.submit, "replace", body=HTML, content_type="text/html"),
        )
        add(op, "json-labelled-text/plain", OK, lambda e: e.inject(*e.op.submit, "relabel", content_type="text/plain"))
        if op.poll is not None:
            add(op, "malformed-json-on-poll", OK, lambda e: e.inject(*e.op.poll, "replace", body=BROKEN_JSON))
            # The provider finished (and charged) on this poll; only its answer is garbled.
            add(
                op,
                "garbled-answer-to-the-finishing-poll",
                OK,
                lambda e: e.inject(*e.op.poll, "replace", body=HTML, content_type="text/html", skip=2),
            )

        # -- account problems
        if aluo:
            add(op, "401-bad-key", err("rejected the API key", "ALUO_API_KEY"), settings={"aluo_api_key": "sk-nope"})
            add(op, "402-no-credits", err("insufficient credits"), knobs={"credits": 0})
            add(op, "403", err("HTTP 403"), lambda e, sp=sp: e.fail(sp, 403))
        if youcam:
            add(op, "401-bad-key", err("refused the sign-in"), settings={"youcam_api_key": "not-my-client-id"})
            add(op, "no-credits", err("too few credits"), knobs={"credits": 0})
            add(op, "403", err("HTTP 403", created=0), lambda e: e.fail(f"{V1}/task/enhance", 403))
            add(op, "401-invalid-token-once", OK, lambda e: e.fail(f"{V1}/task/enhance", 401))

            async def expired(e: Env) -> None:
                assert e.client is not None
                await e.client.call_tool("check_credits", {"provider": "youcam"})  # signs in
                assert isinstance(e.fake, FakeYouCam)
                e.fake.expire_tokens()

            add(op, "token-expired-mid-session", OK, expired)
            for code in ("error_no_face", "error_inference", "unknown_internal_error"):
                expect = err("No credits were consumed", code, created=1)
                add(op, f"engine-{code}", expect, knobs={"engine_error": code})
            add(
                op,
                "task-lost",
                err("lost the task", created=1),
                knobs={"polls_until_done": 3, "polling_interval_ms": 1000, "loss_window_s": 0.2},
                settings={"youcam_max_poll_gap": 0.6},
            )
        if removedo:
            add(op, "401-bad-key", err("check REMOVEDO_API_KEY"), settings={"REMOVEDO_API_KEY": "sk_live_nope_000"})
            add(op, "402-no-credits", err("HTTP 402"), knobs={"credits": 0})
            add(op, "403-suspended", err("account suspended"), knobs={"suspended": True})
        if op is ALUO_EDIT:
            add(op, "job-FAILED", err("could not", created=1), knobs={"fail_jobs": True})
        if removedo:  # the seed does not say failed jobs are refunded: booked, and said so
            expect = err("could not", "do not say whether failed jobs are refunded", charged=1, created=1)
            add(op, "job-FAILED", expect, knobs={"fail_jobs": True})

        # -- the result download
        add(op, "download-503-once", OK, lambda e: e.fail(e.op.download, 503))
        add(op, "download-reset-once", OK, lambda e: e.inject("GET", e.op.download, "drop_before"))
        add(
            op,
            "download-503-persistent",
            err("HTTP 503", "may have been charged", charged=op.price, created=1),
            lambda e: e.fail(e.op.download, 503, times=20),
        )
        add(
            op,
            "download-not-an-image",
            err("not an image", charged=op.price, created=1),
            lambda e: e.inject("GET", e.op.download, "replace", body=HTML, content_type="text/html", times=20),
        )
    return out


CASES = _cases()


# -------------------------------------------------------------------------------------- runner
class Swap:
    """One uvicorn server and one proxy for the whole module; each case plugs in a fresh fake."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def front() -> AsyncIterator[tuple[Swap, FaultProxy, str]]:
    swap = Swap()
    async with serve(swap) as base:
        proxy = FaultProxy(base)
        async with proxy.serve() as url:
            yield swap, proxy, url


@asynccontextmanager
async def environment(
    tmp_path: Path, case: Case, front: tuple[Swap, FaultProxy, str]
) -> AsyncIterator[tuple[Env, Settings]]:
    swap, proxy, url = front
    fake = new_fake(case.op, **case.knobs)
    swap.app = fake.app
    proxy.rules.clear()
    proxy.log.clear()
    overrides = dict(case.settings)
    if overrides.pop("REFUSED", False):
        url = f"http://127.0.0.1:{unused_port()}"  # the provider is down: nothing listens
    settings = make_settings(
        tmp_path,
        **(provider_settings(case.op, fake, url) | overrides),
        provider_timeout=TIMEOUT,
        retry_base_delay=0.01,
        allow_private_urls=True,
        background_providers=[case.op.provider],
    )
    env = Env(case.op, fake, proxy)
    async with Client(build_server(settings)) as client:
        env.client = client
        yield env, settings


def credit_statement(message: str, booked: float) -> None:
    """The message says whether credits were charged, and what it says is true."""
    nothing, maybe = NOTHING_CHARGED.search(message), MAYBE_CHARGED.search(message)
    assert nothing or maybe, f"no word on credits: {message}"
    if booked:
        assert maybe, f"the provider booked {booked}, but the message does not say so: {message}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_fault(tmp_path: Path, workdir: Path, case: Case, front: tuple[Swap, FaultProxy, str]) -> None:
    photo = workdir / "photo.png"
    photo.write_bytes(image_bytes(64, 48))
    async with environment(tmp_path, case, front) as (env, settings):
        if case.arm is not None:
            armed = case.arm(env)
            if armed is not None:
                await armed
        assert env.client is not None
        with anyio.fail_after(60):
            result: CallToolResult = await env.client.call_tool(case.op.tool, case.op.args(str(photo)))
    out = result.structured_content
    fake, expect, op = env.fake, case.expect, case.op
    # The fault really happened (a proxy fault that never fired would prove nothing).
    assert all(env.proxy.fired(rule) for rule in env.rules), env.proxy.log
    files = result_files(settings.results_dir)
    assert temp_files(settings.results_dir) == [], files
    booked = sum(charges(fake))
    # Never a double charge: at most one piece of paid work, charged at most once.
    assert created(op, fake) <= 1 and sum(a > 0 for a in charges(fake)) <= 1, (created(op, fake), charges(fake))
    if expect.ok:
        assert not result.is_error and out["status"] == "succeeded", out["message"]
        assert len(out["images"]) == 1 and out["provider"] == op.provider
        assert files == [Path(out["images"][0]["path"])]
        assert booked == op.price and out["credits"]["charged"] == op.price
        assert created(op, fake) == 1
        return
    assert result.is_error and out["status"] == "failed", out
    message = out["message"]
    assert message and message in result.content[0].text
    for fragment in expect.fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"
    credit_statement(message, booked)
    assert files == []  # no result file for a failure
    assert booked == expect.charged, (charges(fake), message)
    assert created(op, fake) == expect.created
    if expect.submits is not None:
        assert submits(op, fake) == expect.submits
    # What the server recorded as charged is never more than the provider booked.
    assert out["credits"]["charged"] <= booked


def test_the_matrix_covers_every_provider_and_fault_family() -> None:
    families = {c.fault.split("-")[0] for c in CASES}
    assert {c.op.provider for c in CASES} == {"aluo", "youcam", "removedo"}
    assert {"429+Retry", "429", "submit", "poll", "connection", "reset", "read", "slow"} <= families
    assert len(CASES) >= 90, len(CASES)
