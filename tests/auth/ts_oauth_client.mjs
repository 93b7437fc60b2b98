// The MCP TypeScript SDK's OAuth client against photo-mcp, for tests/auth/test_discovery.py.
//
// node ts_oauth_client.mjs <sdk package dir> <MCP URL>
// Given only the URL, the SDK meets our 401, discovers the protected-resource metadata and the
// issuer's metadata, registers a client, and sends the person to the authorization URL; this
// script plays the person (it GETs that URL and reads the code from the redirect), hands the code
// to `finishAuth`, connects again with the token, calls resize_image and prints one JSON report.
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [sdkDir, url] = process.argv.slice(2);
const load = (rel) => import(pathToFileURL(join(sdkDir, "dist/esm", rel)).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
const { UnauthorizedError } = await load("client/auth.js");

const CALLBACK = "http://127.0.0.1:9/callback";
const report = { visited: [], registered: null, scope: null, resource: null };
let code = null;
const store = { tokens: undefined, client: undefined, verifier: undefined };
const provider = {
  get redirectUrl() { return CALLBACK; },
  get clientMetadata() {
    return {
      client_name: "photo-mcp TS test client",
      redirect_uris: [CALLBACK],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  clientInformation: () => store.client,
  saveClientInformation: (info) => { store.client = info; report.registered = info.client_id; },
  tokens: () => store.tokens,
  saveTokens: (tokens) => { store.tokens = tokens; report.scope = tokens.scope ?? null; },
  saveCodeVerifier: (v) => { store.verifier = v; },
  codeVerifier: () => store.verifier,
  async redirectToAuthorization(authorizationUrl) {
    report.visited.push(authorizationUrl.href);
    report.resource = authorizationUrl.searchParams.get("resource");
    const answer = await fetch(authorizationUrl, { redirect: "manual" });
    const location = new URL(answer.headers.get("location"));
    code = location.searchParams.get("code");
  },
};

async function connect() {
  const client = new Client({ name: "ts-oauth", version: "0" });
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
}

try {
  await connect();
  report.error = "connected without signing in";
} catch (err) {
  if (!(err instanceof UnauthorizedError)) throw err;
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await transport.finishAuth(code);
  const { client } = await connect();
  const png = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFElEQVR4nGM8ISfHgA0wYRUdtBIA0MoBFD5jqJkAAAAASUVORK5CYII=";
  const result = await client.callTool({ name: "resize_image", arguments: { image: `data:image/png;base64,${png}`, width: 4 } });
  report.isError = Boolean(result.isError);
  report.text = result.content.map((c) => c.text ?? "").join(" ").slice(0, 300);
  report.uri = result.structuredContent?.images?.[0]?.uri ?? null;
  await client.close();
}
console.log(JSON.stringify(report));
