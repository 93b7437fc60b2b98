// photo-mcp viewer: the view side of MCP Apps (io.modelcontextprotocol/ui), without dependencies.
//
// It speaks JSON-RPC 2.0 over postMessage with the host (window.parent): ui/initialize, then the
// host's ui/notifications/tool-input and tool-result; it asks the host to proxy tools/call and
// resources/read to photo-mcp, to post ui/message into the conversation and to ui/download-file.
// Full-size image bytes only ever travel host <-> view (resources/read, app-only tools).
"use strict";
(() => {
  const PROTOCOL = "2026-01-26";
  const $ = (id) => document.getElementById(id);
  const state = {
    nextId: 1,
    pending: new Map(),
    host: { capabilities: {}, context: {} },
    toolName: null,
    result: null,
    images: [],
    chosen: null,
    polling: null,
    objectUrls: [],
  };

  // ---- JSON-RPC over postMessage ------------------------------------------------------------
  function post(message) {
    window.parent.postMessage({ jsonrpc: "2.0", ...message }, "*");
  }
  function request(method, params) {
    const id = state.nextId++;
    return new Promise((resolve, reject) => {
      state.pending.set(id, { resolve, reject });
      post({ id, method, params });
    });
  }
  function notify(method, params) {
    post({ method, params });
  }
  function respond(id, result) {
    post({ id, result });
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return; // only the host talks to us
    const msg = event.data;
    if (!msg || msg.jsonrpc !== "2.0") return;
    if (msg.id !== undefined && msg.method === undefined) {
      const waiter = state.pending.get(msg.id);
      if (!waiter) return;
      state.pending.delete(msg.id);
      if (msg.error) waiter.reject(new Error(msg.error.message || "request failed"));
      else waiter.resolve(msg.result);
      return;
    }
    if (msg.id !== undefined) return onRequest(msg);
    onNotification(msg.method, msg.params || {});
  });

  function onRequest(msg) {
    if (msg.method === "ui/resource-teardown") {
      stopPolling();
      state.objectUrls.forEach((u) => URL.revokeObjectURL(u));
      return respond(msg.id, {});
    }
    if (msg.method === "ping") return respond(msg.id, {});
    post({ id: msg.id, error: { code: -32601, message: `Method not found: ${msg.method}` } });
  }

  function onNotification(method, params) {
    if (method === "ui/notifications/tool-input") {
      state.toolInput = params.arguments || {};
      if (!state.result) {
        // The host shows the view as the call starts; the result follows.
        if (state.toolName === "pick_image") showPicker({ purpose: state.toolInput.purpose || "" });
        else setStatus(`Working on ${state.toolName || "it"}…`);
      }
    } else if (method === "ui/notifications/tool-result") {
      showResult(params);
    } else if (method === "ui/notifications/tool-cancelled") {
      setStatus(`The call was cancelled${params.reason ? `: ${params.reason}` : ""}.`);
    } else if (method === "ui/notifications/host-context-changed") {
      applyContext(params);
    }
  }

  function applyContext(ctx) {
    state.host.context = { ...state.host.context, ...ctx };
    if (ctx.theme) document.documentElement.classList.toggle("dark", ctx.theme === "dark");
    const vars = ctx.styles && ctx.styles.variables;
    if (vars) for (const [k, v] of Object.entries(vars)) if (v) document.documentElement.style.setProperty(k, v);
    if (ctx.toolInfo && ctx.toolInfo.tool) state.toolName = ctx.toolInfo.tool.name;
  }

  // ---- calls through the host -----------------------------------------------------------------
  async function callTool(name, args) {
    const result = await request("tools/call", { name, arguments: args });
    if (result && result.isError) {
      const text = (result.content || []).filter((c) => c.type === "text").map((c) => c.text).join(" ");
      throw new Error(text || `${name} failed`);
    }
    return result;
  }

  async function readBlob(uri) {
    const result = await request("resources/read", { uri });
    const item = (result.contents || [])[0];
    if (!item || !item.blob) throw new Error(`${uri} has no image bytes`);
    return { base64: item.blob, mimeType: item.mimeType || "application/octet-stream" };
  }

  function blobUrl(base64, mimeType) {
    const bin = atob(base64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const url = URL.createObjectURL(new Blob([bytes], { type: mimeType }));
    state.objectUrls.push(url);
    return url;
  }

  // ---- rendering --------------------------------------------------------------------------------
  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text || "";
    el.classList.toggle("error", !!isError);
  }

  function size(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  // A host that passes the result without structuredContent: the resource links say enough.
  function fromLinks(result) {
    const links = (result.content || []).filter((c) => c.type === "resource_link" && /^photo:\/\/results\//.test(c.uri));
    if (!links.length) return null;
    const images = links.map((c) => {
      const m = /\((\d+)×(\d+)\) from (\S+)/.exec(c.description || "") || [];
      const id = c.uri.split("/").pop();
      const mime = c.mimeType || "image/png";
      return { id, uri: c.uri, path: c.name, mime_type: mime, width: +m[1] || 0, height: +m[2] || 0, bytes: c.size || 0 };
    });
    const provider = (/\) from (\S+)/.exec(links[0].description || "") || [])[1] || "";
    return { status: "succeeded", operation: state.toolName || "result", provider, images, credits: {}, elapsed_s: 0 };
  }

  function showResult(result) {
    state.result = result;
    const sc = (Array.isArray((result.structuredContent || {}).images) ? result.structuredContent : fromLinks(result)) ||
      result.structuredContent || {};
    if (sc.mode === "picker") return showPicker(sc);
    if (!Array.isArray(sc.images)) {
      const text = (result.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
      return setStatus(text, result.isError);
    }
    $("head").hidden = false;
    $("title").textContent = `${sc.operation} on ${sc.provider}`;
    const charged = sc.credits && sc.credits.charged ? `${sc.credits.charged} credits charged` : "no credits charged";
    $("facts").textContent = `${sc.status} · ${charged} · ${Number(sc.elapsed_s || 0).toFixed(1)} s`;
    if (sc.status === "running" || sc.status === "queued") return showJob(sc);
    $("job").hidden = true;
    if (sc.status !== "succeeded") return setStatus(sc.message || sc.status, true);
    setStatus(sc.images.length > 1 ? `${sc.images.length} variants: choose the one to continue with.` : "");
    showGallery(sc, result.content || []);
  }

  function previews(content) {
    return content.filter((c) => c.type === "image");
  }

  function showGallery(sc, content) {
    const gallery = $("gallery");
    gallery.replaceChildren();
    gallery.classList.toggle("single", sc.images.length === 1);
    gallery.classList.remove("compared");
    const inline = previews(content);
    state.images = sc.images.map((image, i) => {
      const card = $("card-template").content.firstElementChild.cloneNode(true);
      card.dataset.id = image.id;
      const img = card.querySelector("img");
      img.alt = `${image.mime_type} result ${i + 1} of ${sc.images.length}`;
      card.querySelector(".thumb").classList.toggle("alpha", image.mime_type !== "image/jpeg");
      if (inline[i]) img.src = `data:${inline[i].mimeType};base64,${inline[i].data}`;
      card.querySelector(".name").textContent = image.path ? image.path.split(/[\\/]/).pop() : image.id;
      // Per-image facts a tool adds (e.g. the age of each simulate_aging image).
      const facts = Object.entries(image.info || {})
        .filter(([k, v]) => k !== "reindexed" && ["string", "number"].includes(typeof v))
        .map(([k, v]) => ` · ${k.replace(/_/g, " ")} ${v}`)
        .join("");
      card.querySelector(".meta").textContent =
        `${image.width}×${image.height} · ${image.mime_type.split("/")[1].toUpperCase()} · ${size(image.bytes)} · ` +
        `${sc.provider}${facts}`;
      const use = card.querySelector(".use");
      use.hidden = sc.images.length < 2;
      use.addEventListener("click", () => choose(image, card));
      card.querySelector(".download").addEventListener("click", () => download(image));
      gallery.appendChild(card);
      loadFull(image, img);
      return { image, card, img };
    });
    if (sc.images.length) loadCompare(sc.images[0]);
  }

  const DISPLAY_SIDE = 2048; // on screen, a bounded copy of bigger results is as sharp; Download gets the file

  async function loadFull(image, img) {
    const big = Math.max(image.width, image.height) > DISPLAY_SIDE && image.uri.startsWith("photo://results/");
    try {
      const { base64, mimeType } = await readBlob(big ? `${image.uri}?max_side=${DISPLAY_SIDE}` : image.uri);
      img.src = blobUrl(base64, mimeType);
      img.dataset.full = "1";
      if (state.afterId === image.id) $("after-img").src = img.src;
    } catch (err) {
      if (!img.src) setStatus(`Cannot show ${image.uri}: ${err.message}`, true);
    }
  }

  // The before/after comparison, when the tool edited an input (its lineage names one).
  async function loadCompare(image) {
    let result;
    try {
      result = await callTool("view_result", { result_id: image.id });
    } catch (err) {
      return; // an older result without lineage: the gallery alone
    }
    const before = (result.structuredContent || {}).before;
    const block = previews(result.content || [])[0];
    if (!before || !block) return;
    const frame = $("frame");
    frame.style.aspectRatio = `${image.width} / ${image.height}`;
    state.afterId = image.id;
    const card = state.images.find((e) => e.image.id === image.id);
    $("after-img").src = card && card.img.src ? card.img.src : "";
    $("before-img").src = `data:${block.mimeType};base64,${block.data}`;
    $("before-img").alt = `Before: ${before.label}`;
    $("compare").hidden = false;
    $("gallery").classList.add("compared");
    setSplit(50);
  }

  function setSplit(percent) {
    const p = Math.max(0, Math.min(100, percent));
    $("before-clip").style.clipPath = `inset(0 ${100 - p}% 0 0)`;
    $("divider").style.left = `${p}%`;
    $("slider").value = String(p);
    $("compare").dataset.split = p.toFixed(1);
  }

  $("slider").addEventListener("input", (e) => setSplit(Number(e.target.value)));
  (() => {
    const frame = $("frame");
    let dragging = false;
    const at = (e) => {
      const r = frame.getBoundingClientRect();
      setSplit(((e.clientX - r.left) / r.width) * 100);
    };
    frame.addEventListener("pointerdown", (e) => {
      dragging = true;
      frame.setPointerCapture(e.pointerId);
      at(e);
    });
    frame.addEventListener("pointermove", (e) => dragging && at(e));
    frame.addEventListener("pointerup", () => (dragging = false));
  })();

  async function choose(image, card) {
    state.chosen = image.id;
    if (!$("compare").hidden) {
      // The comparison follows the chosen variant.
      state.afterId = image.id;
      $("frame").style.aspectRatio = `${image.width} / ${image.height}`;
      const img = card.querySelector("img");
      if (img.src) $("after-img").src = img.src;
    }
    for (const e of state.images) {
      e.card.classList.toggle("chosen", e.card === card);
      e.card.querySelector(".use").classList.toggle("chosen", e.card === card);
    }
    const text =
      `Use this one: ${image.uri} (result ${image.id}, ${image.width}×${image.height}). ` +
      `Continue with photo://results/${image.id} as the image.`;
    try {
      const answer = await request("ui/message", { role: "user", content: [{ type: "text", text }] });
      if (answer && answer.isError) throw new Error("the host did not accept the message");
      setStatus(`Chosen: ${image.uri}`);
    } catch (err) {
      setStatus(`Chosen ${image.uri} (tell the assistant: ${err.message})`, true);
    }
  }

  async function download(image) {
    try {
      const { base64, mimeType } = await readBlob(image.uri);
      const name = image.path ? image.path.split(/[\\/]/).pop() : `${image.id}`;
      if (state.host.capabilities.downloadFile) {
        const resource = { uri: image.uri, mimeType, blob: base64, _meta: { filename: name } };
        const answer = await request("ui/download-file", { contents: [{ type: "resource", resource }] });
        if (answer && answer.isError) throw new Error("the host refused the download");
      } else {
        const a = document.createElement("a");
        a.href = blobUrl(base64, mimeType);
        a.download = name;
        document.body.appendChild(a);
        a.click();
        a.remove();
      }
      setStatus(`Downloaded ${name} (${size(image.bytes)}).`);
    } catch (err) {
      setStatus(`Download failed: ${err.message}`, true);
    }
  }

  // ---- a job still running: progress until it ends, and cancel -----------------------------
  function showJob(sc) {
    $("job").hidden = false;
    $("gallery").replaceChildren();
    $("compare").hidden = true;
    $("cancel").disabled = false;
    renderJob({ status: sc.status, progress: 0, message: sc.message, elapsed_s: sc.elapsed_s });
    stopPolling();
    const jobId = sc.job_id;
    const loop = { stopped: false };
    state.polling = loop;
    (async () => {
      while (!loop.stopped) {
        let status;
        try {
          status = (await callTool("job_status", { job_id: jobId, wait_seconds: 2 })).structuredContent;
        } catch (err) {
          setStatus(`Lost track of job ${jobId}: ${err.message}`, true);
          return;
        }
        if (loop.stopped) return;
        renderJob(status);
        if (!["queued", "running"].includes(status.status)) {
          loop.stopped = true;
          const done = await callTool("get_job", { job_id: jobId }).catch((err) => ({
            content: [{ type: "text", text: err.message }],
            isError: true,
          }));
          showResult(done);
          return;
        }
      }
    })();
  }

  function renderJob(s) {
    const pct = Math.round((s.progress || 0) * 100);
    $("fill").style.width = `${pct}%`;
    $("bar").setAttribute("aria-valuenow", String(pct));
    $("job-message").textContent = `${s.status}: ${s.message || ""} (${pct}%, ${Number(s.elapsed_s || 0).toFixed(0)} s)`;
    $("job").dataset.status = s.status;
    $("job").dataset.progress = String(pct);
    const credits = ((state.result && state.result.structuredContent) || {}).credits || {};
    const cost = credits.estimated ? `about ${credits.estimated} credits when it succeeds` : "no credits";
    $("facts").textContent = `${s.status} · ${cost} · ${Number(s.elapsed_s || 0).toFixed(0)} s`;
  }

  function stopPolling() {
    if (state.polling) state.polling.stopped = true;
    state.polling = null;
  }

  $("cancel").addEventListener("click", async () => {
    const sc = (state.result && state.result.structuredContent) || {};
    $("cancel").disabled = true;
    stopPolling();
    try {
      const result = await callTool("cancel_job", { job_id: sc.job_id });
      const after = result.structuredContent || {};
      state.result = result;
      $("job").hidden = true;
      $("facts").textContent = `${after.status || "cancelled"} · ${Number(after.elapsed_s || 0).toFixed(1)} s`;
      setStatus(`Job ${sc.job_id} ${after.status || "cancelled"}: ${after.message || "stopped"}.`);
    } catch (err) {
      $("cancel").disabled = false;
      setStatus(`Cancel failed: ${err.message}`, true);
    }
  });

  // ---- your own photo in: drop zone / file picker -> upload_image -> photo://uploads/<id> ----
  function showPicker(sc) {
    $("picker").hidden = false;
    $("picker-purpose").textContent = sc.purpose ? `For: ${sc.purpose}` : "";
    setStatus("");
  }

  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) upload(file);
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") $("file").click();
  });
  // A picture on the clipboard (a screenshot, "copy image") can be pasted while the picker shows.
  document.addEventListener("paste", (e) => {
    if ($("picker").hidden) return;
    const file = [...((e.clipboardData && e.clipboardData.files) || [])].find((f) => f.type.startsWith("image/"));
    if (file) {
      e.preventDefault();
      upload(file);
    }
  });
  $("file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) upload(file);
  });

  const MAX_UPLOAD = 15 * 1024 * 1024;
  async function upload(file) {
    if (file.size > MAX_UPLOAD) return setStatus(`${file.name} is ${size(file.size)}; the limit is 15 MB.`, true);
    setStatus(`Uploading ${file.name} (${size(file.size)})…`);
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      let bin = "";
      for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      const result = await callTool("upload_image", { data: btoa(bin), name: file.name });
      const up = result.structuredContent;
      const gallery = $("gallery");
      gallery.replaceChildren();
      gallery.classList.add("single");
      const card = $("card-template").content.firstElementChild.cloneNode(true);
      card.dataset.id = up.id;
      const img = card.querySelector("img");
      img.alt = `Uploaded ${up.name}`;
      // What the server stored (HEIC or TIFF arrive as PNG/JPEG), not the browser's own copy.
      const stored = await readBlob(up.uri).catch(() => null);
      img.src = stored ? blobUrl(stored.base64, stored.mimeType) : URL.createObjectURL(file);
      state.objectUrls.push(img.src);
      card.querySelector(".name").textContent = up.name;
      card.querySelector(".meta").textContent = `${up.width}×${up.height} · ${size(up.bytes)} · ${up.uri}`;
      card.querySelector(".actions").remove();
      gallery.appendChild(card);
      const purpose = state.result && state.result.structuredContent && state.result.structuredContent.purpose;
      const text =
        `Here is my photo: ${up.uri} (${up.name}, ${up.width}×${up.height}). ` +
        `Use ${up.uri} as the image${purpose ? ` for: ${purpose}` : ""}.`;
      if (state.host.capabilities.updateModelContext) {
        await request("ui/update-model-context", { content: [{ type: "text", text }] }).catch(() => {});
      }
      if (state.host.capabilities.message !== undefined) {
        await request("ui/message", { role: "user", content: [{ type: "text", text }] });
      }
      setStatus(`Uploaded as ${up.uri}`);
      $("status").dataset.uri = up.uri;
    } catch (err) {
      setStatus(`Upload failed: ${err.message}`, true);
    }
  }

  // ---- size and start ---------------------------------------------------------------------------
  let lastHeight = 0;
  new ResizeObserver(() => {
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== lastHeight) {
      lastHeight = height;
      notify("ui/notifications/size-changed", { height });
    }
  }).observe(document.documentElement);

  (async () => {
    try {
      const init = await request("ui/initialize", {
        appInfo: { name: "photo-mcp viewer", version: "0.1.0" },
        appCapabilities: { availableDisplayModes: ["inline", "fullscreen"] },
        protocolVersion: PROTOCOL,
      });
      state.host.capabilities = init.hostCapabilities || {};
      applyContext(init.hostContext || {});
      notify("ui/notifications/initialized", {});
      document.documentElement.dataset.ready = "1";
    } catch (err) {
      setStatus(`The host did not start the viewer: ${err.message}`, true);
    }
  })();
})();
