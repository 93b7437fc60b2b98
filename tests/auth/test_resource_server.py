"""photo-mcp as an OAuth 2.1 resource server, against a real authorization server on loopback.

The authorization server (tests/auth/issuer.py, Authlib) issues RS256 JWTs and serves its metadata
and JWKS; photo-mcp runs its real HTTP app on another loopback port. Requests go over real HTTP:

- no token: 401 with `WWW-Authenticate: Bearer resource_metadata=…`, and that URL serves the
  Protected Resource Metadata (RFC 9728) naming our resource URL, the issuer and the scopes;
- a valid token works (from the issuer's token endpoint, client-credentials grant);
- another audience, another issuer, expired, a forged signature, an unpublished key, an HMAC or
  unsigned token: 401 `invalid_token` saying why; no photo:read: 403 `insufficient_scope`;
- a tool whose scope the token lacks answers a tool error naming the scope (photo:edit, photo:spend);
- the static token keeps working beside OAuth;
- opaque tokens through introspection (RFC 7662), and the JWKS cache (one fetch; a new `kid`
  fetches again; a flood of unknown kids does not).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import anyio
import httpx2
import pytest
from joserfc.jwk import RSAKey
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from server.oauth import JWTVerifier
from tests.auth.conftest import STATIC_TOKEN, data_uri, photo_mcp, session, text_of, token_for
from tests.auth.issuer import RS_CLIENT, RS_SECRET, Issuer
from tests.support import INIT

MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def challenge(response: httpx2.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer k="v", …` challenge."""
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer ")
    params = {}
    for part in value[len("Bearer ") :].split('", '):
        key, _, val = part.partition("=")
        params[key.strip()] = val.strip().strip('"')
    return params


async def post_init(base: str, token: str | None) -> httpx2.Response:
    headers = dict(MCP_HEADERS) | ({"authorization": f"Bearer {token}"} if token else {})
    async with httpx2.AsyncClient(timeout=20) as http:
        return await http.post(base + "/mcp", json=INIT, headers=headers)


async def test_no_token_gets_401_with_the_metadata_url_and_the_metadata_names_issuer_and_scopes(
    tmp_path: Path, issuer: Issuer
) -> None:
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer) as served, httpx2.AsyncClient(timeout=20) as http:
            refused = await post_init(served.base, None)
            assert refused.status_code == 401
            params = challenge(refused)
            assert params["resource_metadata"] == served.base + "/.well-known/oauth-protected-resource/mcp"
            assert "error" not in params  # RFC 6750 §3.1: no error code when no credentials came
            assert issuer.url in refused.json()["message"]

            meta = (await http.get(params["resource_metadata"])).json()
            assert meta["resource"] == served.mcp
            assert meta["authorization_servers"] == [issuer.url]
            assert meta["scopes_supported"] == ["photo:read", "photo:edit", "photo:spend"]
            assert meta["bearer_methods_supported"] == ["header"]
            root = (await http.get(served.base + "/.well-known/oauth-protected-resource")).json()
            assert root == meta
            assert (await http.get(served.base + "/healthz")).status_code == 200  # public, as before


async def test_a_token_from_the_issuer_works(tmp_path: Path, issuer: Issuer) -> None:
    client_id, secret = issuer.add_client()
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer) as served:
            async with httpx2.AsyncClient() as http:
                grant = {"grant_type": "client_credentials", "scope": "photo:read photo:edit", "resource": served.mcp}
                token = (await http.post(issuer.url + "/token", data=grant, auth=(client_id, secret))).json()
            assert token["scope"] == "photo:read photo:edit"
            async with session(served.mcp, token["access_token"]) as mcp:
                result = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert not result.is_error, text_of(result)
                listed = (await mcp.list_resources()).resources
                assert [str(r.uri) for r in listed if str(r.uri).startswith("photo://results/")] == [
                    result.structured_content["images"][0]["uri"]
                ]


def _unsigned(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


REFUSALS = {
    "another audience": ("aud", "issued for another resource"),
    "another issuer": ("iss", "another issuer"),
    "expired": ("exp", "expired"),
    "forged signature": ("key", "signature does not verify"),
    "unpublished key": ("kid", "key the issuer does not publish"),
    "unsigned (alg none)": ("none", "algorithm"),
    "not a JWT": ("garbage", "not a JWT"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_bad_tokens_are_refused_with_401_invalid_token(tmp_path: Path, issuer: Issuer, case: str) -> None:
    what, reason = REFUSALS[case]
    rogue = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)  # our issuer's kid, not its key
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer) as served:
            good = {"sub": "alice", "aud": served.mcp}
            token = {
                "aud": lambda: issuer.mint(sub="alice", aud="https://elsewhere.example/mcp"),
                "iss": lambda: issuer.mint(**good, iss="https://impostor.example"),
                "exp": lambda: issuer.mint(**good, expires_in=-3600),
                "key": lambda: issuer.mint(**good, key=rogue),
                "kid": lambda: issuer.mint(**good, key=rogue, kid="k-unknown"),
                "none": lambda: _unsigned({"sub": "alice", "aud": served.mcp, "iss": issuer.url, "exp": 2**40}),
                "garbage": lambda: "definitely-not-a-token-at-all-0123456789",
            }[what]()
            refused = await post_init(served.base, token)
            assert refused.status_code == 401
            params = challenge(refused)
            assert params["error"] == "invalid_token"
            assert reason in params["error_description"]
            assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
            assert token not in refused.text
            # The same issuer's good token still works: nothing was cached from the bad one.
            assert (await post_init(served.base, issuer.mint(**good))).status_code == 200


async def test_a_token_without_photo_read_gets_403_insufficient_scope(tmp_path: Path, issuer: Issuer) -> None:
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer) as served:
            refused = await post_init(served.base, token_for(issuer, served, "alice", scope="photo:edit"))
            assert refused.status_code == 403
            params = challenge(refused)
            assert params["error"] == "insufficient_scope" and params["scope"] == "photo:read"


async def test_tools_need_their_scope_and_say_which(tmp_path: Path, issuer: Issuer) -> None:
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer, aluo_api_key="aluo-key-for-scope-test") as served:
            async with session(served.mcp, token_for(issuer, served, "reader", scope="photo:read")) as mcp:
                free = await mcp.call_tool("check_credits", {})  # reading: allowed
                assert not free.is_error, text_of(free)
                edit = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert edit.is_error and "'photo:edit'" in text_of(edit)
            async with session(served.mcp, token_for(issuer, served, "editor", scope="photo:read photo:edit")) as mcp:
                local = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert not local.is_error, text_of(local)
                paid = await mcp.call_tool("remove_background", {"image": data_uri(), "provider": "aluo"})
                assert paid.is_error and "'photo:spend'" in text_of(paid) and "paid provider" in text_of(paid)


async def test_the_static_token_works_beside_oauth(tmp_path: Path, issuer: Issuer) -> None:
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer, auth_token=STATIC_TOKEN) as served:
            async with session(served.mcp, STATIC_TOKEN) as mcp:
                made = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert not made.is_error, text_of(made)
            async with session(served.mcp, token_for(issuer, served, "alice")) as mcp:
                assert not [r for r in (await mcp.list_resources()).resources if "results" in str(r.uri)]
            assert (await post_init(served.base, STATIC_TOKEN + "x")).status_code == 401


async def test_opaque_tokens_are_checked_by_introspection(tmp_path: Path) -> None:
    with Issuer(opaque=True).serve() as issuer, anyio.fail_after(60):
        client_id, secret = issuer.add_client()
        settings = {
            "oauth_introspection_url": issuer.url + "/introspect",
            "oauth_client_id": RS_CLIENT,
            "oauth_client_secret": RS_SECRET,
        }
        async with photo_mcp(tmp_path, issuer, **settings) as served, httpx2.AsyncClient() as http:

            async def token(resource: str) -> str:
                grant = {"grant_type": "client_credentials", "scope": "photo:read photo:edit", "resource": resource}
                answer = await http.post(issuer.url + "/token", data=grant, auth=(client_id, secret))
                return answer.json()["access_token"]

            good = await token(served.mcp)
            assert not good.startswith("ey")  # opaque: only introspection can read it
            async with session(served.mcp, good) as mcp:
                made = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert not made.is_error, text_of(made)
            assert issuer.introspections == 1  # one answer for the whole session (cached briefly)
            elsewhere = await post_init(served.base, await token("https://elsewhere.example/mcp"))
            assert elsewhere.status_code == 401 and "another resource" in challenge(elsewhere)["error_description"]
            unknown = await post_init(served.base, "opaque-token-the-issuer-never-issued")
            assert unknown.status_code == 401 and "not active" in challenge(unknown)["error_description"]


async def test_the_jwks_is_cached_and_fetched_again_for_a_new_key(issuer: Issuer) -> None:
    aud = "http://127.0.0.1:1/mcp"
    verifier = JWTVerifier(issuer=issuer.url, audience=aud, jwks_url=None, algorithms=["RS256"], min_refresh_s=0)
    with anyio.fail_after(30):
        for _ in range(3):
            assert await verifier.verify_token(issuer.mint(sub="alice", aud=aud)) is not None
        assert issuer.jwks_fetches == 1  # found through the issuer's metadata, then cached
        issuer.rotate_key()
        verified = await verifier.verify_token(issuer.mint(sub="alice", aud=aud))
        assert verified is not None and verified.subject == "alice" and issuer.jwks_fetches == 2
        await verifier.http.aclose()

    slow = JWTVerifier(issuer=issuer.url, audience=aud, jwks_url=issuer.url + "/jwks", algorithms=["RS256"])
    rogue = RSAKey.generate_key(2048, private=True)
    with anyio.fail_after(30):
        assert await slow.verify_token(issuer.mint(sub="alice", aud=aud)) is not None
        before = issuer.jwks_fetches
        for n in range(20):  # made-up kids: refused, and not one fetch each
            assert await slow.verify_token(issuer.mint(sub="x", aud=aud, key=rogue, kid=f"made-up-{n}")) is None
        assert issuer.jwks_fetches == before
        await slow.http.aclose()


def test_hmac_and_none_algorithms_cannot_be_configured() -> None:
    for algs in (["HS256"], ["RS256", "none"]):
        with pytest.raises(ValueError, match="cannot verify"):
            JWTVerifier(issuer="https://as.example", audience="https://rs.example/mcp", jwks_url=None, algorithms=algs)


async def test_without_required_scopes_reading_still_needs_photo_read(tmp_path: Path, issuer: Issuer) -> None:
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer, oauth_required_scopes=[]) as served:
            token = token_for(issuer, served, "eve", scope="photo:edit")
            async with session(served.mcp, token) as mcp:
                with pytest.raises(MCPError, match="'photo:read'"):
                    await mcp.list_resources()
                with pytest.raises(MCPError, match="'photo:read'"):
                    await mcp.read_resource("photo://results/0123456789ab")
                jobs = await mcp.call_tool("get_job", {"job_id": "j_0123456789ab"})
                assert jobs.is_error and "'photo:read'" in text_of(jobs)
                made = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})  # photo:edit
                assert not made.is_error, text_of(made)


async def test_legacy_sse_is_protected_the_same_way(tmp_path: Path, issuer: Issuer) -> None:
    with anyio.fail_after(60):
        async with photo_mcp(tmp_path, issuer, transport="sse") as served, httpx2.AsyncClient() as http:
            refused = await http.get(served.base + "/sse")
            assert refused.status_code == 401
            meta_url = challenge(refused)["resource_metadata"]
            assert meta_url == served.base + "/.well-known/oauth-protected-resource/sse"
            assert (await http.get(meta_url)).json()["resource"] == served.base + "/sse"
            assert (await http.post(served.base + "/messages/?session_id=" + "0" * 32, json={})).status_code == 401
            token = issuer.mint(sub="sid", aud=served.base + "/sse")
            async with (
                sse_client(served.base + "/sse", headers={"Authorization": f"Bearer {token}"}) as (read, write),
                ClientSession(read, write) as mcp,
            ):
                await mcp.initialize()
                made = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 24})
                assert not made.is_error, text_of(made)
            wrong = issuer.mint(sub="sid", aud=served.mcp)  # a token for the Streamable HTTP URL
            other = await http.get(served.base + "/sse", headers={"Authorization": f"Bearer {wrong}"})
            assert other.status_code == 401
