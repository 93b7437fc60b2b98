"""One person's things are theirs: two principals on one OAuth-protected server, over real HTTP.

Alice and Bob hold access tokens of the same issuer (tests/auth/issuer.py) for the same photo-mcp.
Alice makes a result; then Bob, for every way an id reaches the server — resources/list,
resources/read, completions, get_job, cancel_job, and every tool that takes an image reference —
gets exactly the answer an unknown id of the same shape gets, and no download link of hers.

Credits: with PHOTO_MCP_MAX_CREDITS_PER_DAY_PER_USER, concurrent paid calls of one person stop at
that person's cap (against the fake Aluo on loopback) while another person can still spend, and
check_credits shows each their own spend.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceTemplateReference

from tests.auth.conftest import data_uri, photo_mcp, session, text_of, token_for
from tests.auth.issuer import Issuer
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve

IMAGE_PARAMS = ("image", "images", "background", "reference", "mask")


def minimal_args(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    """Arguments that pass schema validation, with `ref` in every image parameter."""
    props, args = schema.get("properties", {}), {}
    for name, prop in props.items():
        if name in IMAGE_PARAMS:
            args[name] = [ref] if prop.get("type") == "array" else ref
        elif name == "width":  # resize_image needs one size
            args[name] = 16
    for name in schema.get("required", []):
        if name in args:
            continue
        prop = props[name]
        kind = prop.get("type")
        if "enum" in prop:
            args[name] = prop["enum"][0]
        elif kind == "array":
            args[name] = [0, 0, 8, 8]  # a box
        elif kind == "integer":
            args[name] = max(int(prop.get("minimum", 1)), 1)
        elif kind == "number":
            args[name] = 1
        elif kind == "boolean":
            args[name] = False
        else:
            args[name] = "a red mug on a table"
    return args


async def error_text(call: Any) -> str:
    try:
        result = await call
    except MCPError as exc:
        return f"MCPError: {exc}"
    return text_of(result) if getattr(result, "is_error", False) else f"OK: {result!r}"[:300]


def as_if(text: str, unknown: str, known: str) -> str:
    """`text` (an answer about `unknown`) as it would read about `known`."""
    return text.replace(unknown, known)


async def test_neither_person_sees_or_reaches_the_others_results_or_jobs(tmp_path: Path, issuer: Issuer) -> None:
    with anyio.fail_after(120):
        # Keys (never used: every call stops at the image reference) so that each tool gets that far.
        keys = {"aluo_api_key": "sk-unused", "youcam_api_key": "unused", "youcam_secret_key": "unused"}
        async with photo_mcp(tmp_path, issuer, removedo_api_key="unused", **keys) as served:
            alice_token, bob_token = token_for(issuer, served, "alice"), token_for(issuer, served, "bob")
            async with session(served.mcp, alice_token) as alice:
                made = await alice.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert not made.is_error, text_of(made)
                image = made.structured_content["images"][0]
                uri, job_id = image["uri"], made.structured_content["job_id"]
                result_id = uri.rsplit("/", 1)[1]
                link = image.get("url")
                # Alice herself reaches all of it.
                assert uri in [str(r.uri) for r in (await alice.list_resources()).resources]
                assert (await alice.read_resource(uri)).contents
                assert not (await alice.call_tool("get_job", {"job_id": job_id})).is_error
                assert not (await alice.call_tool("crop_image", {"image": uri, "box": [0, 0, 8, 8]})).is_error
                tools = {t.name: t.input_schema for t in (await alice.list_tools()).tools}

            async with session(served.mcp, bob_token) as bob:
                await _bob_cannot_reach(bob, tools, uri, result_id, job_id)
                await _bob_lists_nothing_of_alices(bob, result_id, job_id)

            if link:  # signed download links: Bob can neither see Alice's nor make one from her id
                async with httpx2.AsyncClient() as http:
                    unsigned = await http.get(served.base + f"/files/{result_id}")
                    assert unsigned.status_code in (401, 403, 404)


async def _bob_cannot_reach(bob: ClientSession, tools: dict[str, Any], uri: str, result_id: str, job_id: str) -> None:
    unknown_result, unknown_job = secrets.token_hex(6), "j_" + secrets.token_hex(6)
    unknown_uri = f"photo://results/{unknown_result}"

    read_theirs = await error_text(bob.read_resource(uri))
    read_unknown = await error_text(bob.read_resource(unknown_uri))
    assert read_theirs.startswith("MCPError") and read_theirs == as_if(read_unknown, unknown_result, result_id)

    for tool in ("get_job", "cancel_job"):
        theirs = await error_text(bob.call_tool(tool, {"job_id": job_id}))
        unknown = await error_text(bob.call_tool(tool, {"job_id": unknown_job}))
        assert "No job with id" in theirs and theirs == as_if(unknown, unknown_job, job_id), tool

    tried = 0
    for name, schema in sorted(tools.items()):
        if not takes_an_image(schema):
            continue
        theirs = await error_text(bob.call_tool(name, minimal_args(schema, uri)))
        unknown = await error_text(bob.call_tool(name, minimal_args(schema, unknown_uri)))
        assert "No result with id" in theirs, (name, theirs)
        assert theirs == as_if(unknown, unknown_result, result_id), name
        tried += 1
    assert tried >= 10  # every image-taking tool, paid ones included


def takes_an_image(schema: dict[str, Any]) -> bool:
    return any(p in schema.get("properties", {}) for p in IMAGE_PARAMS)


async def _bob_lists_nothing_of_alices(bob: ClientSession, result_id: str, job_id: str) -> None:
    listed = [str(r.uri) for r in (await bob.list_resources()).resources]
    assert not [u for u in listed if result_id in u]
    ref = ResourceTemplateReference(uri="photo://results/{result_id}")
    for prefix in ("", result_id[:1], result_id):
        completed = await bob.complete(ref, {"name": "result_id", "value": prefix})
        assert result_id not in completed.completion.values
    credits = await bob.call_tool("check_credits", {})
    assert credits.structured_content["spent_today_here"] == 0
    assert job_id not in text_of(credits) and result_id not in text_of(credits)


@pytest.mark.parametrize("cap", [3])
async def test_per_person_caps_hold_under_concurrent_calls(tmp_path: Path, issuer: Issuer, cap: int) -> None:
    fake = FakeAluo(remove_bg_cost=1, polls_until_done=1)
    with anyio.fail_after(120):
        async with serve(fake.app) as aluo:
            settings = {
                "aluo_api_key": fake.api_key,
                "aluo_base_url": FakeAluo.api_base(aluo),
                "allow_private_urls": True,
                "retry_base_delay": 0.01,
                "aluo_poll_interval": 0.02,
                "max_credits_per_day_per_user": cap,
            }
            async with photo_mcp(tmp_path, issuer, **settings) as served:
                outcomes: list[str] = []

                async def spend(token: str) -> None:
                    async with session(served.mcp, token) as mcp:
                        result = await mcp.call_tool("remove_background", {"image": data_uri(), "provider": "aluo"})
                        outcomes.append("refused" if result.is_error else "ok")
                        if result.is_error:
                            assert "PHOTO_MCP_MAX_CREDITS_PER_DAY_PER_USER" in text_of(result), text_of(result)

                alice = token_for(issuer, served, "alice")
                async with anyio.create_task_group() as tg:
                    for _ in range(2 * cap):
                        tg.start_soon(spend, alice)
                assert sorted(outcomes) == ["ok"] * cap + ["refused"] * cap

                bob = token_for(issuer, served, "bob")
                outcomes.clear()
                await spend(bob)
                assert outcomes == ["ok"]  # Alice's spend is not Bob's

                for token, spent in ((alice, cap), (bob, 1)):
                    async with session(served.mcp, token) as mcp:
                        report = (await mcp.call_tool("check_credits", {"provider": "aluo"})).structured_content
                    assert report["spent_today_here"] == spent
                    assert report["caps"]["per_day_per_user"] == cap
    assert len(fake.charges) == cap + 1


def test_minimal_args_fill_required_fields() -> None:
    schema = {
        "properties": {"image": {"type": "string"}, "n": {"type": "integer", "minimum": 2}, "k": {"enum": ["a", "b"]}},
        "required": ["image", "n", "k"],
    }
    assert minimal_args(schema, "photo://results/x") == {"image": "photo://results/x", "n": 2, "k": "a"}
    assert minimal_args({"properties": {"box": {"type": "array"}}, "required": ["box"]}, "r") == {"box": [0, 0, 8, 8]}
    assert re.fullmatch(r"[0-9a-f]{12}", secrets.token_hex(6))


async def test_local_paths_per_person_and_never_the_shared_output_dir(tmp_path: Path, issuer: Issuer) -> None:
    shared, ann_dir = tmp_path / "work", tmp_path / "ann"
    shared.mkdir()
    ann_dir.mkdir()
    (shared / "team.png").write_bytes(image_bytes(40, 30, "png"))
    (ann_dir / "mine.png").write_bytes(image_bytes(40, 30, "png"))
    per_user = {"ann": [str(ann_dir)]}  # by subject (issuer#subject works too)
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer, allowed_dirs=[shared], allowed_dirs_per_user=per_user) as served:

            async def resize(who: str, path: Path | str) -> str:
                async with session(served.mcp, token_for(issuer, served, who)) as mcp:
                    result = await mcp.call_tool("resize_image", {"image": str(path), "width": 16})
                    return "ok" if not result.is_error else text_of(result)

            assert await resize("ann", ann_dir / "mine.png") == "ok"
            assert "outside the directories" in await resize("bob", ann_dir / "mine.png")
            assert await resize("bob", shared / "team.png") == "ok"  # no folders of his own: the shared ones
            assert "outside the directories" in await resize("ann", shared / "team.png")
            async with session(served.mcp, token_for(issuer, served, "ann")) as ann:
                made = await ann.call_tool("resize_image", {"image": str(ann_dir / "mine.png"), "width": 8})
                result_path = made.structured_content["images"][0]["path"]
            # The output dir holds everyone's results: by path it is nobody's, not even the owner's.
            for who in ("bob", "ann"):
                assert "outside the directories" in await resize(who, result_path)
