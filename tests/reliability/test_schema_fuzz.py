"""Property-based: random arguments for every tool, generated from the tool's own JSON schema.

One server for the whole module (in-memory `mcp.Client`, no provider keys, private URLs refused,
local paths only in a tmp dir, and an HTTP transport that refuses every connection, so nothing
can reach the network whatever is generated). For each tool Hypothesis draws argument objects
from its `inputSchema`: valid values, near misses (bounds ± 1, wrong enum members), values of the
wrong type, missing required fields, extra fields, and image references of every kind (paths in
and out of the allowed dir, a FIFO, results, data URIs, private URLs, other schemes, junk).

Property: every call returns a `CallToolResult` (an error or not) within a bound — never a
protocol error, a crash or a hang — and the server still answers `tools/list` afterwards.
"""

from __future__ import annotations

import base64
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_types import CallToolResult

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tools import providers
from tools.core.results import TEMP_PREFIX

EXAMPLES_PER_TOOL = 30
CALL_BOUND_S = 30.0
IMAGE_FIELDS = {"image", "images", "reference", "mask", "background"}


def _refuse(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("network disabled in the fuzz test", request=request)


def _discover_tools() -> dict[str, dict[str, Any]]:
    """Every tool's input schema, read once at collection through a throwaway client."""

    async def read() -> dict[str, dict[str, Any]]:
        with tempfile.TemporaryDirectory() as tmp:
            server = build_server(make_settings(Path(tmp)))
            async with Client(server) as client:
                return {t.name: t.input_schema for t in (await client.list_tools()).tools}

    return anyio.run(read)


TOOLS = _discover_tools()


# -------------------------------------------------------------------------------- strategies
def json_values() -> st.SearchStrategy[Any]:
    """Any JSON-ish value, including awkward ones (huge ints, NaN, surrogates, deep nesting)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        st.text(alphabet=st.characters(codec=None, categories=("Cs", "Cc", "Zs", "So")), max_size=8),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=10,
    )


@dataclass(frozen=True)
class Refs:
    work: Path

    def strategy(self) -> st.SearchStrategy[str]:
        w = self.work
        png_uri = "data:image/png;base64," + base64.b64encode(image_bytes(12, 12, "png")).decode()
        fixed = [
            str(w / "a.png"),
            str(w / "a.jpg"),
            str(w / "mask.png"),
            str(w),
            str(w / "missing.png"),
            str(w / "fifo.png"),
            str(w / "notes.png"),
            f"{w}/../outside.png",
            "/etc/passwd",
            "/dev/zero",
            "~",
            "~/x.png",
            "",
            " ",
            "a.png",
            "photo://results/",
            "photo://results/000000000000",
            "photo://jobs/1",
            png_uri,
            "data:image/png;base64,@@@",
            "data:text/plain;base64,aGk=",
            "data:image/png;base64,",
            "http://127.0.0.1:1/a.png",
            "http://10.0.0.1/a.png",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/a.png",
            "https://192.168.0.1/a.png",
            "file:///etc/passwd",
            f"file://{w}/a.png",
            "ftp://127.0.0.1/a.png",
            "C:\\Users\\a.png",
            "\x00",
        ]
        # Random tails only after prefixes whose hosts are literal private addresses (no DNS look-ups).
        prefixes = ["", "/", "./", "../", "~/", f"{w}/", "photo://results/", "data:image/png;base64,", "file://"]
        prefixes += ["http://127.0.0.1/", "http://10.0.0.1:8080/"]
        tails = st.builds(lambda p, t: p + t, st.sampled_from(prefixes), st.text(max_size=40))
        good = st.sampled_from([str(w / "a.png"), str(w / "a.jpg"), png_uri])  # usable images
        return st.one_of(good, st.sampled_from(fixed), tails)


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    return [kind] if isinstance(kind, str) else list(kind or [])


def near_misses(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values just outside what the schema allows (or just at its edges)."""
    options: list[Any] = []
    for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if bound in schema:
            b = schema[bound]
            options += [b, b - 1, b + 1, b - 0.5, b + 0.5]
    if "enum" in schema:
        options += [str(schema["enum"][0]).upper(), f"{schema['enum'][0]} ", "", 0, None]
    if "maxLength" in schema and schema["maxLength"] <= 5000:
        options.append("x" * (schema["maxLength"] + 1))
    if "minLength" in schema:
        options.append("x" * max(0, schema["minLength"] - 1))
    if "maxItems" in schema:
        options.append([1] * (schema["maxItems"] + 1))
    if "minItems" in schema:
        options.append([])
    options += [math.nan, math.inf, -1, 2**63, "", [], {}]
    return st.sampled_from(options)


def from_schema(schema: dict[str, Any], refs: st.SearchStrategy[str], image: bool) -> st.SearchStrategy[Any]:
    """Values that satisfy `schema` (mostly), with image references where an image is expected."""
    if "anyOf" in schema:
        return st.one_of([from_schema(s, refs, image) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = _types(schema)
    strategies: list[st.SearchStrategy[Any]] = []
    for kind in kinds or ["string"]:
        if kind == "string":
            if image:
                strategies.append(refs)
            else:
                max_size = min(schema.get("maxLength", 200), 200)
                strategies.append(st.text(min_size=min(schema.get("minLength", 0), max_size), max_size=max_size))
        elif kind == "integer":
            strategies.append(st.integers(schema.get("minimum"), schema.get("maximum")))
        elif kind == "number":
            strategies.append(st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False))
        elif kind == "boolean":
            strategies.append(st.booleans())
        elif kind == "null":
            strategies.append(st.none())
        elif kind == "array":
            items = schema.get("items", {})
            strategies.append(
                st.lists(
                    from_schema(items, refs, image),
                    min_size=schema.get("minItems", 0),
                    max_size=min(schema.get("maxItems", 6), 6),
                )
            )
        elif kind == "object":
            strategies.append(st.dictionaries(st.text(max_size=8), json_values(), max_size=3))
    return st.one_of(strategies) if strategies else json_values()


@st.composite
def arguments(draw: st.DrawFn, schema: dict[str, Any], refs: st.SearchStrategy[str]) -> dict[str, Any]:
    """One argument object: each property valid, a near miss, the wrong type, or left out.

    A third of the objects are entirely valid (so the calls get past validation into the tools);
    the rest mix valid fields with broken ones and extra fields.
    """
    required = set(schema.get("required", []))
    args: dict[str, Any] = {}
    all_valid = draw(st.integers(0, 2)) == 0
    for name, prop in schema.get("properties", {}).items():
        mode = "valid" if all_valid else draw(st.sampled_from(["valid", "valid", "near", "wrong", "omit"]))
        if mode == "omit" or (name not in required and draw(st.booleans())):
            continue
        image = name in IMAGE_FIELDS
        if mode == "valid":
            args[name] = draw(from_schema(prop, refs, image))
        elif mode == "near":
            args[name] = draw(near_misses(prop))
        else:
            args[name] = draw(json_values())
    if all_valid:
        return args
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=10), json_values(), max_size=2))
    for key, value in extra.items():
        args.setdefault(key, value)
    return args


# ------------------------------------------------------------------------------------ server
@dataclass
class Fuzz:
    portal: BlockingPortal
    client: Client
    refs: st.SearchStrategy[str]
    results: Path


async def _call(client: Client, tool: str, args: dict[str, Any]) -> Any:
    with anyio.fail_after(CALL_BOUND_S):
        return await client.call_tool(tool, args)


async def _list_tools(client: Client) -> set[str]:
    with anyio.fail_after(CALL_BOUND_S):
        return {t.name for t in (await client.list_tools()).tools}


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    root = tmp_path_factory.mktemp("fuzz")
    work = root / "work"
    work.mkdir()
    (work / "a.png").write_bytes(image_bytes(48, 32, "png"))
    (work / "a.jpg").write_bytes(image_bytes(48, 32, "jpeg"))
    (work / "mask.png").write_bytes(image_bytes(48, 32, "png"))
    (work / "notes.png").write_text("text")
    (root / "outside.png").write_bytes(image_bytes(8, 8, "png"))
    os.mkfifo(work / "fifo.png")
    cfg = make_settings(root, allow_private_urls=False, wait_seconds=5, max_pixels=4_000_000)
    assert not any(providers.configured(cfg, p) for p in providers.HOSTED)
    server = build_server(cfg, http_transport=httpx2.MockTransport(_refuse))
    with start_blocking_portal("asyncio") as portal, portal.wrap_async_context_manager(Client(server)) as client:
        yield Fuzz(portal, client, Refs(work).strategy(), cfg.results_dir)


# ------------------------------------------------------------------------------------- tests
def test_every_tool_is_fuzzed() -> None:
    assert len(TOOLS) >= 20, sorted(TOOLS)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_random_arguments_never_break_the_server(fuzz: Fuzz, tool: str) -> None:
    schema = TOOLS[tool]

    @settings(
        max_examples=EXAMPLES_PER_TOOL,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(args=arguments(schema, fuzz.refs))
    def one_call(args: dict[str, Any]) -> None:
        try:
            result = fuzz.portal.call(_call, fuzz.client, tool, args)
        except TimeoutError:
            pytest.fail(f"{tool}({args!r:.300}) hung for more than {CALL_BOUND_S:.0f} s")
        except Exception as exc:  # a protocol error: the server failed to answer with a result
            pytest.fail(f"{tool}({args!r:.300}) raised {type(exc).__name__}: {exc}")
        assert isinstance(result, CallToolResult), type(result)
        if result.is_error:
            assert result.content and result.content[0].type == "text" and result.content[0].text.strip()

    one_call()
    assert tool in fuzz.portal.call(_list_tools, fuzz.client)
    assert not [p for p in fuzz.results.iterdir() if p.name.startswith(TEMP_PREFIX)]
