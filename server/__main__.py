"""photo-mcp command line.

photo-mcp [--transport stdio|sse|http] [--host 127.0.0.1] [--port 8000]
photo-mcp call TOOL key=value ...     run one tool in-process, print text and result paths
photo-mcp doctor                      show configuration (keys masked) and reachability
photo-mcp models [list|fetch NAME|remove NAME]   the optional stronger offline models
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photo-mcp", description="MCP server for image editing and generation.")
    parser.add_argument("--transport", choices=["stdio", "sse", "http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="bind address for sse/http (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port for sse/http (default 8000)")
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        help="read settings from this .env file (default: the user config dir's .env; never the cwd)",
    )
    sub = parser.add_subparsers(dest="command")
    call = sub.add_parser("call", help="run one tool in-process and print its result")
    call.add_argument("tool")
    call.add_argument("args", nargs="*", metavar="key=value", help="values are JSON when they parse, else strings")
    sub.add_parser("doctor", help="show configuration (keys masked), output dir and provider reachability")
    models = sub.add_parser("models", help="offline segmentation models: list | fetch NAME | remove NAME")
    models.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _log_to_stderr() -> None:
    """One stderr handler for every logger (stdout is the stdio transport's: never log there).

    PHOTO_MCP_LOG_LEVEL (default WARNING) sets the level; `PhotoServer` applies the setting again
    to the `photo_mcp` loggers once it is read, `.env` included.
    """
    level = os.environ.get("PHOTO_MCP_LOG_LEVEL", "WARNING").strip().upper()
    logging.basicConfig(
        stream=sys.stderr,
        level=level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "WARNING",
        format="%(asctime)s photo-mcp %(levelname)s %(name)s: %(message)s",
    )


def _collector_paused_until_built() -> None:
    """No cyclic garbage collection while the server loads; `_built` freezes what it made.

    Loading the SDK, pydantic and our modules allocates ~140,000 long-lived objects (modules,
    classes, schemas, validators) and hardly any garbage, yet the collector walks them ~200 times
    meanwhile: ~50 ms of CPU, a tenth of a cold start (most of it during the SDK's import).
    """
    gc.disable()


def _built() -> None:
    """Collect again, without ever walking what start-up made: `gc.freeze` moves it to the
    permanent generation (kept for the life of the process, as it is anyway, together with ~1.3 MB
    of start-up garbage a full collection would have freed)."""
    gc.freeze()
    gc.enable()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _log_to_stderr()
    from tools.core.memory import tune_allocator

    tune_allocator()  # before anything large is allocated
    if args.command is None:  # serving: the collector resumes once the server is built
        _collector_paused_until_built()
    try:
        # Imported here, not at the top: a Ctrl-C while it loads is then an exit like any other.
        from server.config import ConfigError, load_settings

        try:
            if args.command == "call":
                return anyio.run(_call, args.tool, args.args, args.env_file)
            if args.command == "models":
                from tools.providers.local.models import main as models_main

                return models_main(args.args)
            if args.command == "doctor":
                from server.doctor import run_doctor

                return anyio.run(run_doctor, load_settings("stdio", env_file=args.env_file))
            return _serve(args.transport, args.host, args.port, args.env_file)
        except ConfigError as exc:
            print(f"photo-mcp: {exc}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        return 130
    finally:
        gc.enable()  # a start-up that failed (a configuration error) leaves it on too


def _serve(transport: str, host: str, port: int, env_file: Path | None = None) -> int:
    from server.app import build_server
    from server.config import load_settings
    from server.security import InsecureBind, check_bind

    settings = load_settings(transport, env_file=env_file)  # type: ignore[arg-type]
    server = build_server(settings)
    _built()
    if transport == "stdio":
        return _serve_stdio(server)
    try:
        check_bind(settings, host)
    except InsecureBind as exc:
        print(f"photo-mcp: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from server.http import http_app, uvicorn_config

    app = http_app(server, settings, transport, host, port)  # type: ignore[arg-type]
    config = uvicorn_config(app, settings, host, port)
    print(f"photo-mcp: serving {transport} on http://{host}:{port}", file=sys.stderr)
    anyio.run(uvicorn.Server(config).serve)
    return 0


STDIO_BANNER = (
    "photo-mcp: an MCP server for image editing, speaking JSON-RPC on stdin/stdout for an MCP client "
    "(Claude Desktop, an IDE agent: put this command in its config, see the README); by hand use "
    "`photo-mcp call TOOL key=value` or `photo-mcp doctor`. Ctrl-C stops it."
)


def _serve_stdio(server: Any) -> int:
    """Serve stdio until EOF, or until Ctrl-C (SIGINT): then exit 130.

    Started by hand in a terminal, it says on stderr (never stdout: that is the wire) what it is.
    """
    banner = sys.stdin.isatty()
    if sys.platform == "win32":  # no SIGINT receiver there; Ctrl-C raises KeyboardInterrupt (main → 130)
        if banner:
            print(STDIO_BANNER, file=sys.stderr, flush=True)
        anyio.run(server.run_stdio_async)
    else:
        anyio.run(_stdio_until_interrupted, server, banner)
    return 0


async def _stdio_until_interrupted(server: Any, banner: bool) -> None:
    """Run the stdio server; on SIGINT close it and leave the process with exit code 130.

    Leaving by `os._exit`: the transport reads stdin in a worker thread that a terminal keeps
    blocked until the next line, and waiting for that thread is why Ctrl-C used to do nothing.
    """
    import signal

    from server.stdio import run_stdio

    async with anyio.create_task_group() as tg:

        async def stop_on_sigint(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            with anyio.open_signal_receiver(signal.SIGINT) as signals:
                if banner:  # only now: a Ctrl-C after the line is always handled here
                    print(STDIO_BANNER, file=sys.stderr, flush=True)
                task_status.started()
                async for _ in signals:
                    break
            tg.cancel_scope.cancel()  # sessions end, the lifespan closes the runtime
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                # The lifespan clears the attribute once the runtime is closed; there is no event for it.
                while getattr(server, "runtime", None) is not None:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            sys.stderr.flush()
            os._exit(130)

        await tg.start(stop_on_sigint)  # serve only once Ctrl-C is handled
        await run_stdio(server)
        tg.cancel_scope.cancel()


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _image_params(schema: dict[str, Any]) -> set[str]:
    """The tool's image parameters: those whose schema shows a path or photo:// example."""
    names = set()
    for name, prop in (schema.get("properties") or {}).items():
        text = json.dumps(prop)
        if "photo://results/" in text or '"~/' in text:
            names.add(name)
    return names


def _paths_from_cwd(arguments: dict[str, Any], image_params: set[str]) -> dict[str, Any]:
    """Relative file paths in image arguments, made absolute against the caller's directory.

    The CLI runs where the user typed it, so `image=mug.png` means ./mug.png (the server itself
    resolves relative paths against its output dir: MCP hosts start it in /). A bare word such as
    `background=white` is not a path: only values with a suffix, a separator, or a file here are.
    """

    def absolute(value: Any) -> Any:
        if isinstance(value, list):
            return [absolute(v) for v in value]
        if not isinstance(value, str) or not value or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
            return value  # not text, or a URI / URL / data: / photo:// / Windows drive
        path = Path(value)
        if path.is_absolute() or value.startswith("~"):
            return value
        if path.suffix or os.sep in value or "/" in value or (Path.cwd() / path).exists():
            return str(Path.cwd() / path)
        return value

    return {k: absolute(v) if k in image_params else v for k, v in arguments.items()}


@asynccontextmanager
async def _client(env_file: Path | None = None) -> AsyncIterator[Any]:
    from mcp import Client

    from server.app import build_server
    from server.config import load_settings

    async with Client(build_server(load_settings("stdio", env_file=env_file))) as client:
        yield client


async def _call(tool: str, pairs: list[str], env_file: Path | None = None) -> int:
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            print(f"photo-mcp: argument {pair!r} is not key=value", file=sys.stderr)
            return 2
        arguments[key] = _parse_value(value)

    async def progress(value: float, total: float | None, message: str | None) -> None:
        print(f"  … {message or ''}", file=sys.stderr)

    async with _client(env_file) as client:
        schemas = {t.name: t.input_schema for t in (await client.list_tools()).tools}
        arguments = _paths_from_cwd(arguments, _image_params(schemas.get(tool) or {}))
        result = await client.call_tool(tool, arguments, progress_callback=progress)
    for block in result.content:
        if block.type == "text":
            print(block.text)
    for image in (result.structured_content or {}).get("images", []):
        print(image["path"])
    return 1 if result.is_error else 0


if __name__ == "__main__":
    sys.exit(main())
