"""Real OAuth clients find their way in from our 401 alone: the MCP Python SDK's `mcp.client.auth`
and the TypeScript SDK's (1.17, `tests/auth/ts_oauth_client.mjs`; .ci/run installs it).

Nothing is configured in the client but photo-mcp's URL (and, for the service, its client
credentials). On the first request the client gets our 401, follows `resource_metadata` to the
Protected Resource Metadata, finds the issuer there, reads the issuer's RFC 8414 metadata,
registers itself (RFC 7591), runs the authorization-code flow with PKCE asking for our resource
(RFC 8707) and the scopes we publish, and retries with the token. The person "at the browser" is
played by an HTTP GET of the authorization URL (the authorization server approves at once and
redirects with the code), so the flow runs headless but every hop is real HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.auth.conftest import data_uri, photo_mcp, session, text_of, token_for
from tests.auth.issuer import Issuer

CALLBACK = "http://127.0.0.1:9/callback"  # never connected to: the browser stand-in reads the redirect


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """Plays the person: opens the authorization URL and hands the redirect's code back."""

    def __init__(self) -> None:
        self.visited: list[str] = []
        self._location = ""

    async def open(self, url: str) -> None:
        self.visited.append(url)
        async with httpx2.AsyncClient() as http:
            answer = await http.get(url)
        assert answer.status_code == 302, answer.text
        self._location = answer.headers["location"]

    async def callback(self) -> AuthorizationCodeResult:
        assert self._location.startswith(CALLBACK), self._location
        query = parse_qs(urlsplit(self._location).query)
        return AuthorizationCodeResult(
            code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0]
        )


async def test_the_python_sdk_discovers_registers_and_signs_in_from_our_401(tmp_path: Path, issuer: Issuer) -> None:
    browser, storage = Browser(), MemoryStorage()
    issuer.login_as = "alice"
    with anyio.fail_after(90):
        async with photo_mcp(tmp_path, issuer) as served:
            provider = OAuthClientProvider(
                server_url=served.mcp,
                client_metadata=OAuthClientMetadata(
                    client_name="photo-mcp test client",
                    redirect_uris=[CALLBACK],
                    grant_types=["authorization_code"],
                    response_types=["code"],
                    token_endpoint_auth_method="none",
                ),
                storage=storage,
                redirect_handler=browser.open,
                callback_handler=browser.callback,
            )
            async with (
                httpx2.AsyncClient(auth=provider, timeout=30) as http,
                streamable_http_client(served.mcp, http_client=http) as (read, write, *_),
                ClientSession(read, write) as mcp,
            ):
                await mcp.initialize()
                made = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert not made.is_error, text_of(made)
                uri = made.structured_content["images"][0]["uri"]

            # The whole discovery chain ran: one visit to the issuer's authorization endpoint,
            # asking for our resource and the scopes our metadata publishes, as a registered client.
            (visit,) = browser.visited
            asked = parse_qs(urlsplit(visit).query)
            assert visit.startswith(issuer.url + "/authorize?")
            assert asked["resource"] == [served.mcp]
            assert set(asked["scope"][0].split()) == {"photo:read", "photo:edit", "photo:spend"}
            assert asked["code_challenge_method"] == ["S256"]
            assert storage.client_info is not None and storage.client_info.client_id in issuer.clients
            assert storage.tokens is not None
            (record,) = [t for t in issuer.tokens.values() if t["client_id"] == storage.client_info.client_id]
            assert record["aud"] == served.mcp and record["sub"] == "alice"

            # The token stands for Alice: her result is hers, not Bob's.
            async with session(served.mcp, token_for(issuer, served, "alice")) as alice:
                assert uri in [str(r.uri) for r in (await alice.list_resources()).resources]
            async with session(served.mcp, token_for(issuer, served, "bob")) as bob:
                assert uri not in [str(r.uri) for r in (await bob.list_resources()).resources]


async def test_a_service_signs_in_with_client_credentials(tmp_path: Path, issuer: Issuer) -> None:
    client_id, secret = issuer.add_client(scope="photo:read")
    with anyio.fail_after(90):
        async with photo_mcp(tmp_path, issuer) as served:
            provider = ClientCredentialsOAuthProvider(
                server_url=served.mcp,
                storage=MemoryStorage(),
                client_id=client_id,
                client_secret=secret,
                scope="photo:read photo:edit",
                issuer=issuer.url,
            )
            async with (
                httpx2.AsyncClient(auth=provider, timeout=30) as http,
                streamable_http_client(served.mcp, http_client=http) as (read, write, *_),
                ClientSession(read, write) as mcp,
            ):
                await mcp.initialize()
                credits = await mcp.call_tool("check_credits", {})
                assert not credits.is_error, text_of(credits)
                # The issuer granted only photo:read to this service: editing is refused, by name.
                edit = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert edit.is_error and "'photo:edit'" in text_of(edit)


TS_SDK = Path(os.environ.get("PHOTO_MCP_OLD_CLIENTS_DIR") or Path(__file__).parents[2] / ".ci" / "clients")
TS_SDK = TS_SDK / "node_modules" / "sdk-1.17"


async def test_the_typescript_sdk_discovers_registers_and_signs_in_from_our_401(tmp_path: Path, issuer: Issuer) -> None:
    node = shutil.which("node")
    if node is None or not (TS_SDK / "package.json").exists():
        if os.environ.get("PHOTO_MCP_REQUIRE_OLD_CLIENTS"):
            pytest.fail("PHOTO_MCP_REQUIRE_OLD_CLIENTS is set but the TypeScript SDK 1.17 is not installed")
        pytest.skip("the TypeScript SDK 1.17 is not installed (.ci/run installs it into .ci/clients)")
    issuer.login_as = "tess"
    script = Path(__file__).with_name("ts_oauth_client.mjs")
    with anyio.fail_after(90):
        async with photo_mcp(tmp_path, issuer) as served:
            done = await anyio.run_process([node, str(script), str(TS_SDK), served.mcp], check=False)
            assert done.returncode == 0, done.stderr.decode()[-2000:].replace("\\n", "\n")
            report = json.loads(done.stdout.decode().strip().splitlines()[-1])
            assert not report.get("error") and report["isError"] is False, report
            (visit,) = report["visited"]
            assert visit.startswith(issuer.url + "/authorize?") and report["resource"] == served.mcp
            assert report["registered"] in issuer.clients
            assert set(report["scope"].split()) == {"photo:read", "photo:edit", "photo:spend"}
            async with session(served.mcp, token_for(issuer, served, "tess")) as tess:
                assert report["uri"] in [str(r.uri) for r in (await tess.list_resources()).resources]
