// A minimal MCP Apps host for the browser tests: the official host-side bridge (AppBridge from
// npm @modelcontextprotocol/ext-apps) embedding the view in a sandboxed iframe, the way hosts do.
// The bridge's requests go to the test (page.exposeFunction), which forwards them to the real
// photo-mcp server over MCP; what the view asks the conversation (ui/message, downloads) is logged.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

window.photoHost = {
  async open({ html, tool, toolInput, toolResult, width = 760, theme = "light" }) {
    document.getElementById("view")?.remove(); // one view at a time
    const iframe = document.createElement("iframe");
    iframe.id = "view";
    iframe.setAttribute("sandbox", "allow-scripts"); // no same-origin, no downloads, no forms: like hosts
    iframe.style.width = `${width}px`;
    iframe.style.height = "600px";
    iframe.style.border = "0";
    iframe.srcdoc = html;
    document.body.appendChild(iframe);

    const capabilities = {
      openLinks: {},
      downloadFile: {},
      serverTools: {},
      serverResources: {},
      logging: {},
      message: { text: {} },
      updateModelContext: { text: {} },
    };
    const hostContext = {
      theme,
      displayMode: "inline",
      availableDisplayModes: ["inline"],
      platform: "web",
      containerDimensions: { maxHeight: 2000, width },
      toolInfo: { tool },
    };
    const bridge = new AppBridge(null, { name: "photo-mcp-test-host", version: "1.0.0" }, capabilities, {
      hostContext,
    });
    const log = (entry) => window.hostLog(JSON.stringify(entry));
    bridge.oncalltool = async (params) => JSON.parse(await window.hostCallTool(JSON.stringify(params)));
    bridge.onreadresource = async (params) => JSON.parse(await window.hostReadResource(JSON.stringify(params)));
    bridge.onmessage = async (params) => {
      log({ kind: "message", params });
      return {};
    };
    bridge.ondownloadfile = async (params) => {
      log({ kind: "download", params });
      return {};
    };
    bridge.onupdatemodelcontext = async (params) => {
      log({ kind: "context", params });
      return {};
    };
    bridge.onopenlink = async (params) => {
      log({ kind: "link", params });
      return {};
    };
    bridge.onsizechange = ({ height }) => {
      if (height) iframe.style.height = `${height}px`;
    };
    bridge.oninitialized = async () => {
      if (toolInput) await bridge.sendToolInput({ arguments: toolInput });
      if (toolResult) await bridge.sendToolResult(toolResult);
      log({ kind: "initialized" });
    };
    await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
    window.photoBridge = bridge;
  },
};
