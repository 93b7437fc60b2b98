"""Aluo's asynchronous tasks (photo-editor, photo-generate): remember, poll, charge, download.

    GET /photo-editor/status?taskId=    PENDING -> SUCCESS | FAILED (charged on SUCCESS)
    GET /photo-generate/status?taskId=  the same, plus `timings` (seed 000)

The task id (with its price) is remembered before the first poll, so a restarted server
resumes polling instead of paying for the work twice. Polling uses the shared loop
(tools/providers/polling.py): a rate-limited poll waits, failed rounds count against a
small budget, PHOTO_MCP_ALUO_MAX_WAIT bounds the whole wait.
"""

from __future__ import annotations

from typing import Any, Literal

from tools.core.budget import amount
from tools.core.errors import ProviderError, ProviderUnavailable, RateLimited
from tools.providers.aluo.spec import Basis
from tools.providers.aluo.wire import PROVIDER, TITLE, AluoWire, Envelope, failed, result_url, timings
from tools.providers.base import JobHooks, ProviderImage
from tools.providers.http import download_all, may_have_charged
from tools.providers.polling import Poll, PollState, poll_until_done

TaskKind = Literal["editor", "generate"]
TASK_PATH: dict[str, str] = {"editor": "/photo-editor", "generate": "/photo-generate"}
TASK_NOUN: dict[str, str] = {"editor": "edit", "generate": "generation"}
BAD_POLL_BUDGET = 2  # consecutive failed status rounds (each already retried by `send`) tolerated


class AluoTasks(AluoWire):
    _poll_interval: float
    _max_wait: float

    async def _run_task(
        self, kind: TaskKind, env: Envelope, price: tuple[float, Basis], hooks: JobHooks
    ) -> list[ProviderImage]:
        task_id = env.data.get("taskId") or env.data.get("task_id")
        if not isinstance(task_id, str | int) or isinstance(task_id, bool) or not str(task_id):
            raise may_have_charged(
                ProviderError(
                    f"Aluo accepted the {TASK_NOUN[kind]} but returned no taskId, so its result cannot be fetched. "
                    "It may still run.",
                    provider=PROVIDER,
                ),
                title=TITLE,
                max_charge=price[0],
            )
        task_id = str(task_id)
        deducted = env.deducted or 0.0
        # Remembered before the first poll: a restart resumes here instead of paying twice.
        await hooks.remember(kind=kind, task_id=task_id, price=price[0], basis=price[1], deducted=deducted)
        await hooks.progress(f"queued at Aluo (task {task_id})", 0.15)
        return await self._poll(kind, task_id, hooks, price=price, deducted=deducted, already_charged=False)

    async def _poll(
        self,
        kind: str,
        task_id: str,
        hooks: JobHooks,
        *,
        price: tuple[float, Basis],
        deducted: float,
        already_charged: bool,
    ) -> list[ProviderImage]:
        noun = TASK_NOUN[kind]
        total = [deducted]

        async def check(state: PollState) -> Poll:
            try:
                env = await self._call(
                    "GET", f"{TASK_PATH[kind]}/status", what=f"the {noun} status", task_id=task_id,
                    params={"taskId": task_id},
                )  # fmt: skip
            except RateLimited as exc:
                # Polls count against Aluo's per-minute limit (Free: 10): wait it out, the task runs on.
                await hooks.progress(f"Aluo is rate limiting status checks; waiting ({state.elapsed:.0f} s)")
                return Poll("rate_limited", wait=exc.retry_after)
            except ProviderUnavailable as exc:
                await hooks.progress(f"Aluo status check failed; retrying ({state.elapsed:.0f} s)")
                return Poll("unreachable", error=exc)
            total[0] += env.deducted or 0.0
            status = str(env.data.get("status") or "PENDING").upper()
            if status == "SUCCESS":
                return Poll("done", env.data)
            if status == "FAILED":
                return Poll("failed", env.data, error=failed(noun, task_id, env.data, self._scrub))
            return Poll("pending", {"status": status})

        async def pending(state: PollState, poll: Poll) -> None:
            fraction = 0.2 + 0.7 * (1 - 0.85**state.polls)
            status = poll.body["status"].lower()
            await hooks.progress(f"running on Aluo ({status}, {state.elapsed:.0f} s)", fraction)

        def give_up(poll: Poll, count: int) -> ProviderError:
            cause = poll.error.message if poll.error else "no answer"
            return ProviderUnavailable(
                f"Lost contact with Aluo while its {noun} task {task_id} was running ({cause}). The task may "
                f"still finish and charge (at most {amount(price[0])}); run check_credits before running it again.",
                provider=PROVIDER,
                charged=True,
                retryable=True,
                max_charge=price[0],
            )

        def too_long(elapsed: float) -> ProviderError:
            return ProviderUnavailable(
                f"Aluo's {noun} task {task_id} has not finished after {elapsed:.0f} s, so this server stopped "
                f"waiting (PHOTO_MCP_ALUO_MAX_WAIT). It may still finish and charge (at most {amount(price[0])}); "
                "run check_credits before running it again.",
                provider=PROVIDER,
                charged=True,
                retryable=True,
                max_charge=price[0],
            )

        done = await poll_until_done(
            check,
            interval=self._poll_interval,
            budget=BAD_POLL_BUDGET,
            give_up=give_up,
            deadline=self._max_wait,
            on_deadline=too_long,
            on_pending=pending,
        )
        return await self._finish(kind, task_id, done.body, hooks, price, total[0], already_charged)

    async def _finish(
        self,
        kind: str,
        task_id: str,
        data: dict[str, Any],
        hooks: JobHooks,
        price: tuple[float, Basis],
        deducted: float,
        already_charged: bool,
    ) -> list[ProviderImage]:
        items = [i for i in data.get("images") or [] if isinstance(i, dict) and isinstance(i.get("url"), str)]
        urls = [i["url"] for i in items]
        if not urls and (single := result_url(data)):
            urls = [single]
        if not already_charged:
            # Aluo charges a task on SUCCESS: what its answers reported, else the plan's price.
            if deducted > 0:
                await hooks.charged(deducted, basis="reported")
                amount = deducted
            else:
                amount = price[0]
                await hooks.charged(amount, basis=price[1])
            await hooks.remember(charged=amount)
        if not urls:
            raise self._no_result(f"the {TASK_NOUN[kind]} (task {task_id})", price[0])
        spent = timings(data)
        took = f" (Aluo took {sum(spent.values()):.1f} s)" if spent else ""
        await hooks.progress(f"downloading {len(urls)} image(s) from Aluo{took}", 0.92)
        cost = deducted if deducted > 0 else price[0]
        datas = await download_all(
            self._http, urls, provider=PROVIDER, policy=self._policy, max_charge=cost, downloads=self.downloads
        )
        description = data.get("description")
        meta: dict[str, Any] = {"aluo_task_id": task_id}
        if isinstance(description, str) and description:
            meta["description"] = description
        if spent:
            meta["aluo_timings"] = spent
        return [
            ProviderImage(d, meta=dict(meta), ref={"url": u, "task_id": task_id})
            for d, u in zip(datas, urls, strict=True)
        ]
