// One session of a released MCP TypeScript SDK client against photo-mcp, for tests/test_compat_clients.py.
//
// node ts_client.mjs <sdk package dir> '<config JSON>'
//   config: {transport: "stdio"|"sse"|"http", command, args, env, cwd, url, headers, image, tool?, arguments?}
// Connects, lists tools, calls resize_image on `image` (or `tool` with `arguments`), reads the result resource, and prints one
// JSON report on stdout. Besides what the SDK's own API returned (it validates every result with
// its own zod schemas), the report lists every field of the raw wire responses that this SDK
// version's schema does not define, so the test can hold the server to the client's schema.
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [sdkDir, configText] = process.argv.slice(2);
const config = JSON.parse(configText);
const load = (rel) => import(pathToFileURL(join(sdkDir, "dist/esm", rel)).href);
const { Client } = await load("client/index.js");
const types = await load("types.js");
const sdkVersion = JSON.parse(
  await (await import("node:fs/promises")).readFile(join(sdkDir, "package.json"), "utf8"),
).version;

function unwrap(schema) {
  // ZodDefault / ZodOptional / ZodEffects → the object inside.
  let s = schema;
  while (s && !s.shape && s._def && (s._def.innerType || s._def.schema)) s = s._def.innerType || s._def.schema;
  return s;
}
const keysOf = (schema) => new Set(Object.keys(unwrap(schema)?.shape ?? {}));
function unknown(obj, schema, where, out) {
  if (!obj || typeof obj !== "object") return;
  const known = keysOf(schema);
  for (const k of Object.keys(obj)) if (!known.has(k)) out.push(`${where}.${k}`);
}
function contentOptions() {
  const content = unwrap(types.CallToolResultSchema.shape.content);
  const union = unwrap(content.element ?? content._def.type);
  const byType = {};
  for (const option of union.options ?? union._def.options) {
    const o = unwrap(option);
    byType[o.shape.type.value] = o;
  }
  return byType;
}

function checkWire(method, result) {
  const out = [];
  if (method === "initialize") {
    unknown(result, types.InitializeResultSchema, "initialize", out);
    unknown(result.serverInfo, types.ImplementationSchema, "initialize.serverInfo", out);
    unknown(result.capabilities, types.ServerCapabilitiesSchema, "initialize.capabilities", out);
  } else if (method === "tools/list") {
    unknown(result, types.ListToolsResultSchema, "tools/list", out);
    for (const tool of result.tools ?? []) {
      unknown(tool, types.ToolSchema, `tools/list.${tool.name}`, out);
      if (tool.annotations && types.ToolAnnotationsSchema)
        unknown(tool.annotations, types.ToolAnnotationsSchema, `tools/list.${tool.name}.annotations`, out);
    }
  } else if (method === "tools/call") {
    unknown(result, types.CallToolResultSchema, "tools/call", out);
    const options = contentOptions();
    for (const block of result.content ?? []) {
      if (!options[block.type]) out.push(`tools/call.content[type=${block.type}]`);
      else unknown(block, options[block.type], `tools/call.content[${block.type}]`, out);
    }
  } else if (method === "resources/read") {
    unknown(result, types.ReadResourceResultSchema, "resources/read", out);
  }
  return out;
}

async function transport() {
  if (config.transport === "stdio") {
    const { StdioClientTransport } = await load("client/stdio.js");
    return new StdioClientTransport({
      command: config.command, args: config.args, env: config.env, cwd: config.cwd, stderr: "inherit",
    });
  }
  if (config.transport === "sse") {
    const { SSEClientTransport } = await load("client/sse.js");
    const headers = config.headers ?? {};
    return new SSEClientTransport(new URL(config.url), {
      requestInit: { headers },
      eventSourceInit: {
        fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, Accept: "text/event-stream", ...headers } }),
      },
    });
  }
  const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
  return new StreamableHTTPClientTransport(new URL(config.url), { requestInit: { headers: config.headers ?? {} } });
}

const report = { sdk: sdkVersion, transport: config.transport, unknownFields: [] };
const pending = new Map();
const t = await transport();
const send = t.send.bind(t);
t.send = async (message, ...rest) => {
  if (message.method && message.id !== undefined) pending.set(message.id, message.method);
  return send(message, ...rest);
};
const start = t.start.bind(t);
t.start = async () => {
  const inner = t.onmessage;
  t.onmessage = (message, ...rest) => {
    const method = pending.get(message.id);
    if (method && message.result) {
      if (method === "initialize") report.protocolVersion = message.result.protocolVersion;
      report.unknownFields.push(...checkWire(method, message.result));
    }
    return inner?.(message, ...rest);
  };
  return start();
};

const client = new Client({ name: "photo-mcp-compat-test", version: "1.0.0" });
try {
  await client.connect(t);
  report.serverVersion = client.getServerVersion();
  const { tools } = await client.listTools();
  report.tools = tools.map((tool) => tool.name);
  try {
    const result = await client.callTool({
      name: config.tool ?? "resize_image",
      arguments: config.arguments ?? { image: config.image, width: 20 },
    });
    report.call = {
      isError: result.isError ?? false,
      types: result.content.map((b) => b.type),
      text: result.content.filter((b) => b.type === "text").map((b) => b.text).join("\n"),
      images: result.content.filter((b) => b.type === "image").map((b) => ({ mimeType: b.mimeType, bytes: b.data.length })),
      structuredContent: result.structuredContent ?? null,
    };
    const uri = /photo:\/\/results\/[A-Za-z0-9_-]+/.exec(report.call.text)?.[0];
    if (uri) {
      const read = await client.readResource({ uri });
      report.read = read.contents.map((c) => ({ uri: c.uri, mimeType: c.mimeType, blobPrefix: c.blob?.slice(0, 12) }));
    }
  } catch (err) {
    report.callError = String(err?.message ?? err);
  }
} catch (err) {
  report.error = String(err?.stack ?? err);
} finally {
  await client.close().catch(() => {});
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(0);
