"""Access-token verification for the OAuth 2.1 resource server (the SDK's `TokenVerifier`).

    JWTVerifier            a JWT access token (RFC 9068): signature against the issuer's JWKS
                           (PyJWT; fetched once, cached, fetched again for an unknown `kid`),
                           then issuer, audience (our resource URL, RFC 8707), expiry, scopes
    IntrospectionVerifier  an opaque token: asked of the issuer's introspection endpoint
                           (RFC 7662), then the same checks on its answer
    PhotoTokenVerifier     the static PHOTO_MCP_AUTH_TOKEN (constant-time compare) first, then
                           one of the two above: both kinds of token work at once

A refused token is `None` (the SDK's bearer middleware then answers 401); why it was refused
goes to `refusal` (for the 401's error_description) and to the log, never the token itself.
No cryptography here: PyJWT checks signatures and claims.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2
from mcp.server.auth.provider import AccessToken

from tools.core.principals import ALL_SCOPES

if TYPE_CHECKING:
    import jwt
else:

    class _LazyJWT:
        """PyJWT (and the cryptography it loads) is imported on the first token check, not at start-up."""

        def __getattr__(self, name: str) -> Any:
            import jwt

            return getattr(jwt, name)

    jwt = _LazyJWT()

log = logging.getLogger("photo_mcp.auth")

STATIC_CLIENT = "photo-mcp-static-token"  # the client_id the static token is given
FETCH_TIMEOUT_S = 10.0
JWKS_MAX_AGE_S = 3600.0  # a key set older than this is fetched again on the next token
JWKS_MIN_REFRESH_S = 10.0  # an unknown kid refetches at most this often (a flood of forged kids)
# An active answer is trusted this long (never past the token's expiry): one introspection per
# token per half minute, not one per HTTP request; a revoked token stops working within it.
INTROSPECTION_CACHE_S = 30.0
INTROSPECTION_CACHE_SIZE = 1024

# Why the last token of this request was refused (read by the 401 answer in the same task).
refusal: ContextVar[str | None] = ContextVar("photo_mcp_token_refusal", default=None)


def _refuse(reason: str) -> None:
    refusal.set(reason)
    log.info("Refused a bearer token: %s", reason)


def scopes_of(claims: dict[str, Any]) -> list[str]:
    """The token's scopes: `scope` (space-separated, RFC 9068/7662) or `scp` (a list, some IdPs)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return scope.split()
    scp = claims.get("scp")
    if isinstance(scp, list):
        return [s for s in scp if isinstance(s, str)]
    return scp.split() if isinstance(scp, str) else []


def audiences_of(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def same_resource(a: str, b: str) -> bool:
    """Resource URLs compared as the SDK does: scheme and host case-insensitively, a trailing slash aside."""

    def norm(url: str) -> str:
        p = urlsplit(url.strip())
        return urlunsplit((p.scheme.lower(), p.netloc.lower(), p.path.rstrip("/"), p.query, ""))

    return norm(a) == norm(b)


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer publishes its metadata: RFC 8414 (path inserted), then OpenID Connect Discovery."""
    p = urlsplit(issuer)
    path = p.path.rstrip("/")
    return [
        urlunsplit((p.scheme, p.netloc, "/.well-known/oauth-authorization-server" + path, "", "")),
        issuer.rstrip("/") + "/.well-known/openid-configuration",
    ]


class _Http:
    """One HTTP client for the issuer's endpoints, made on first use and closed with the app."""

    def __init__(self, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._client: httpx2.AsyncClient | None = None

    @property
    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=FETCH_TIMEOUT_S, transport=self._transport)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class JWTVerifier:
    """Verify JWT access tokens issued by `issuer` for `audience`."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None,
        algorithms: list[str],
        leeway: float = 30.0,
        min_refresh_s: float = JWKS_MIN_REFRESH_S,
        http: _Http | None = None,
    ) -> None:
        # Asymmetric algorithms only: "none" and HMAC (a key the issuer would share with us) never.
        bad = [a for a in algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if bad:
            raise ValueError(f"PHOTO_MCP_OAUTH_ALGORITHMS: {', '.join(bad)} cannot verify an issuer's signature")
        self.issuer, self.audience, self.algorithms, self.leeway = issuer, audience, algorithms, leeway
        self.jwks_url = jwks_url
        self.min_refresh_s = min_refresh_s
        self.http = http or _Http()
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._lock = anyio.Lock()

    async def _jwks_url(self) -> str:
        if self.jwks_url is None:
            for url in metadata_urls(self.issuer):
                try:
                    response = await self.http.client.get(url, headers={"accept": "application/json"})
                    meta = response.json() if response.status_code == 200 else None
                except (httpx2.HTTPError, ValueError):
                    continue
                if isinstance(meta, dict) and meta.get("issuer") == self.issuer and meta.get("jwks_uri"):
                    self.jwks_url = str(meta["jwks_uri"])
                    break
            else:
                raise LookupError(f"the issuer {self.issuer} publishes no metadata with a jwks_uri")
        return self.jwks_url

    async def _refresh(self) -> None:
        url = await self._jwks_url()
        response = await self.http.client.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        keys: dict[str | None, jwt.PyJWK] = {}
        for key in jwt.PyJWKSet.from_dict(response.json()).keys:
            if key.public_key_use in (None, "sig"):
                keys[key.key_id] = key
        self._keys, self._fetched_at = keys, time.monotonic()

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The issuer's signing key `kid`: from the cache, else after fetching the JWKS again
        (at most once per `min_refresh_s`: key rotation is picked up, a flood of made-up kids is not
        turned into a flood of fetches).

        Raises:
            httpx2.HTTPError, jwt.PyJWKSetError, LookupError: the key set cannot be fetched or read.
        """
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > JWKS_MAX_AGE_S or (kid not in self._keys and age >= self.min_refresh_s):
                await self._refresh()
            if kid is None and len(self._keys) == 1:  # a set of one key may leave out its kid
                return next(iter(self._keys.values()))
            return self._keys.get(kid)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            _refuse("not a JWT access token")
            return None
        alg = header.get("alg")
        if alg not in self.algorithms:
            _refuse(f"signing algorithm {str(alg)[:20]!r} is not accepted")
            return None
        if header.get("typ") not in (None, "JWT", "jwt", "at+jwt", "application/at+jwt"):
            _refuse("not an access token (typ)")
            return None
        try:
            key = await self.key(header.get("kid"))
        except (httpx2.HTTPError, jwt.PyJWTError, LookupError, ValueError) as exc:
            log.warning("Cannot fetch the signing keys of %s: %s", self.issuer, type(exc).__name__)
            _refuse("the issuer's signing keys cannot be fetched")
            return None
        if key is None:
            _refuse("signed with a key the issuer does not publish")
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            _refuse("the token has expired")
            return None
        except jwt.InvalidAudienceError:
            _refuse("the token was issued for another resource (audience)")
            return None
        except jwt.InvalidIssuerError:
            _refuse("the token was issued by another issuer")
            return None
        except jwt.InvalidSignatureError:
            _refuse("the token's signature does not verify")
            return None
        except jwt.PyJWTError as exc:
            _refuse(f"the token is invalid ({type(exc).__name__})")
            return None
        return _access_token(token, claims, self.audience)


class IntrospectionVerifier:
    """Verify opaque tokens by asking the issuer's introspection endpoint (RFC 7662)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        url: str,
        client_id: str | None,
        client_secret: str | None,
        leeway: float = 30.0,
        http: _Http | None = None,
    ) -> None:
        self.issuer, self.audience, self.url, self.leeway = issuer, audience, url, leeway
        self._auth = httpx2.BasicAuth(client_id, client_secret or "") if client_id else None
        self.http = http or _Http()
        self._cache: OrderedDict[str, tuple[float, AccessToken]] = OrderedDict()  # sha256(token) -> answer

    async def verify_token(self, token: str) -> AccessToken | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        fresh = cached is not None and cached[0] > time.monotonic()
        if fresh and (cached[1].expires_at is None or cached[1].expires_at + self.leeway >= time.time()):
            return cached[1]
        self._cache.pop(key, None)
        access = await self._introspect(token)
        if access is not None:
            self._cache[key] = (time.monotonic() + INTROSPECTION_CACHE_S, access)
            while len(self._cache) > INTROSPECTION_CACHE_SIZE:
                self._cache.popitem(last=False)
        return access

    async def _introspect(self, token: str) -> AccessToken | None:
        try:
            response = await self.http.client.post(
                self.url,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"accept": "application/json"},
                auth=self._auth,
            )
            claims = response.json() if response.status_code == 200 else None
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("Token introspection at %s failed: %s", self.url, type(exc).__name__)
            claims = None
        if not isinstance(claims, dict):
            _refuse("the issuer's introspection endpoint did not answer")
            return None
        if claims.get("active") is not True:
            _refuse("the issuer says the token is not active")
            return None
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp + self.leeway < time.time():
            _refuse("the token has expired")
            return None
        if claims.get("iss", self.issuer) != self.issuer:
            _refuse("the token was issued by another issuer")
            return None
        if not any(same_resource(a, self.audience) for a in audiences_of(claims)):
            _refuse("the token was issued for another resource (audience)")
            return None
        return _access_token(token, claims, self.audience)


def _access_token(token: str, claims: dict[str, Any], audience: str) -> AccessToken:
    exp = claims.get("exp")
    return AccessToken(
        token=token,
        client_id=str(claims.get("client_id") or claims.get("azp") or ""),
        scopes=scopes_of(claims),
        expires_at=int(exp) if isinstance(exp, int | float) else None,
        resource=audience,
        subject=str(claims["sub"]) if claims.get("sub") is not None else None,
        claims={"iss": claims.get("iss")},
    )


class StaticAccessToken(AccessToken):
    """What the static PHOTO_MCP_AUTH_TOKEN verifies as (told apart by type, never by a claim)."""


class PhotoTokenVerifier:
    """The static token (if set) and OAuth tokens (if an issuer is set), in that order."""

    def __init__(self, *, static_token: str | None, oauth: JWTVerifier | IntrospectionVerifier | None, resource: str):
        self._static = static_token.encode() if static_token else None
        self.oauth = oauth
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        refusal.set(None)
        if self._static is not None and hmac.compare_digest(token.strip().encode(), self._static):
            # Full rights, one fixed principal: the one-person setup, alongside OAuth.
            return StaticAccessToken(
                token=token, client_id=STATIC_CLIENT, scopes=list(ALL_SCOPES), resource=self.resource
            )
        if self.oauth is None:
            _refuse("the token does not match PHOTO_MCP_AUTH_TOKEN")
            return None
        return await self.oauth.verify_token(token)

    async def aclose(self) -> None:
        if self.oauth is not None:
            await self.oauth.http.aclose()
