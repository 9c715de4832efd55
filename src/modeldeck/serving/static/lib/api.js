// The public HTTP API as the page uses it, and the frame every panel shares: run button, latency,
// errors with their code and fix, the raw JSON, and the equivalent curl and Python calls.

import { h } from "./dom.js";

export const ORIGIN = window.location.origin;

// The key a server started with --api-key asks for: kept for this tab only, sent as a bearer token.
const KEY_ITEM = "modeldeck-api-key";

export function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

export function authHeaders() {
  const key = apiKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

// One call to the server: JSON or multipart, timed, never throwing (errors come back as values).
export async function call(path, { json, form, method = "POST", signal } = {}) {
  const init = { method, signal, headers: authHeaders() };
  if (json !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const started = performance.now();
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    return { ok: false, status: 0, ms: performance.now() - started, error: networkError(err) };
  }
  let data = null;
  const text = await response.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  const ms = performance.now() - started;
  if (!response.ok) return { ok: false, status: response.status, ms, data, error: errorOf(data, response) };
  return { ok: true, status: response.status, ms, data };
}

export function networkError(err) {
  if (err && err.name === "AbortError") return { code: "stopped", message: "stopped by you" };
  return { code: "network", message: "the server could not be reached (is it still running?)" };
}

// modeldeck's {"error": {code, message}} and OpenAI's {"error": {message, code, type}} alike.
export function errorOf(data, response) {
  const error = data && typeof data === "object" ? data.error : null;
  if (error && typeof error === "object") {
    return { code: String(error.code ?? response.status), message: String(error.message ?? "") };
  }
  return { code: String(response.status), message: `${response.status} ${response.statusText}` };
}

// --- snippets: the same request as curl and Python ------------------------------------------------

function shellQuote(text) {
  return `'${String(text).replaceAll("'", "'\\''")}'`;
}

// JSON as a Python literal (true -> True, null -> None), for the copyable Python call.
export function pyLiteral(value, indent = "") {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "None";
  if (typeof value === "string") return JSON.stringify(value);
  const inner = `${indent}    `;
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    const flat = `[${value.map((v) => pyLiteral(v, inner)).join(", ")}]`;
    if (flat.length < 80 && !flat.includes("\n")) return flat;
    return `[\n${value.map((v) => inner + pyLiteral(v, inner)).join(",\n")},\n${indent}]`;
  }
  const entries = Object.entries(value);
  if (!entries.length) return "{}";
  const flat = `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${pyLiteral(v, inner)}`).join(", ")}}`;
  if (flat.length < 80 && !flat.includes("\n")) return flat;
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pyLiteral(v, inner)}`).join(",\n")},\n${indent}}`;
}

// With a key in use, the snippets read it from $MODELDECK_API_KEY (the key itself is never printed).
function authSnippets() {
  if (!apiKey()) return { curl: "", imports: "import httpx", python: "" };
  return {
    curl: ` \\\n  -H "Authorization: Bearer $MODELDECK_API_KEY"`,
    imports: "import os\n\nimport httpx",
    python: `, headers={"Authorization": "Bearer " + os.environ["MODELDECK_API_KEY"]}`,
  };
}

export function jsonSnippets(path, body) {
  const url = ORIGIN + path;
  const auth = authSnippets();
  return {
    curl: `curl -s ${url}${auth.curl} \\\n  -H 'content-type: application/json' \\\n  -d ${shellQuote(JSON.stringify(body))}`,
    python: `${auth.imports}\n\nbody = ${pyLiteral(body)}\nresponse = httpx.post(${JSON.stringify(url)}, json=body${auth.python}, timeout=60)\nprint(response.json())`,
  };
}

// files: [[field, filename]]; fields: {name: string}
export function formSnippets(path, files, fields = {}) {
  const url = ORIGIN + path;
  const curlParts = [
    ...files.map(([field, name]) => `-F ${shellQuote(`${field}=@${name}`)}`),
    ...Object.entries(fields).map(([k, v]) => `-F ${shellQuote(`${k}=${v}`)}`),
  ];
  const pyFiles = files.map(([field, name]) => `(${JSON.stringify(field)}, open(${JSON.stringify(name)}, "rb"))`);
  const pyData = Object.keys(fields).length ? `, data=${pyLiteral(fields)}` : "";
  const auth = authSnippets();
  return {
    curl: `curl -s ${url}${auth.curl} \\\n  ${curlParts.join(" \\\n  ")}`,
    python: `${auth.imports}\n\nfiles = [${pyFiles.join(", ")}]\nresponse = httpx.post(${JSON.stringify(url)}, files=files${pyData}${auth.python}, timeout=60)\nprint(response.json())`,
  };
}

// --- the panel frame --------------------------------------------------------------------------------

function copyButton(pre, what) {
  const button = h("button", { type: "button", class: "secondary copy", text: `Copy ${what}` });
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(pre.textContent);
      button.textContent = "Copied";
    } catch {
      // No clipboard permission (an http page on another host): select the text for Ctrl+C instead.
      window.getSelection().selectAllChildren(pre);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { button.textContent = `Copy ${what}`; }, 1500);
  });
  return button;
}

export class Panel {
  constructor(root, model, detail) {
    this.root = root;
    this.model = model;
    this.detail = detail;
    const info = detail.model && typeof detail.model === "object" ? detail.model : {};
    const heading = h("h2", { tabindex: "-1" }, model.name, " ", h("small", { text: model.task }));
    const meta = model.description || [
      `model ${model.model ?? info.name ?? "?"}`,
      `version ${model.version ?? info.version ?? "?"}`,
      `runtime ${model.runtime ?? "?"}`,
      `licence ${model.license || "not stated"}`,
    ].join(" · ");
    this.inputs = h("div", { class: "inputs" });
    this.runButton = h("button", { type: "button", class: "primary run", text: "Run" });
    this.latency = h("span", { class: "latency", "aria-live": "polite" });
    this.actions = h("div", { class: "actions" }, this.runButton, this.latency);
    this.error = h("div", { class: "error", role: "alert", hidden: true });
    this.view = h("div", { class: "view" });
    this.raw = h("pre", { class: "raw-json", tabindex: "0" });
    this.curl = h("pre", { class: "curl", tabindex: "0" });
    this.python = h("pre", { class: "python", tabindex: "0" });
    this.output = h("div", { class: "output", hidden: true },
      h("details", { class: "raw" }, h("summary", { text: "Raw JSON" }), this.raw),
      h("details", { class: "code", open: true }, h("summary", { text: "The same call with curl and Python" }),
        h("div", { class: "snippet" }, h("h3", { text: "curl" }), this.curl, copyButton(this.curl, "curl")),
        h("div", { class: "snippet" }, h("h3", { text: "Python" }), this.python, copyButton(this.python, "Python"))));
    root.replaceChildren(heading, h("p", { class: "model-meta", text: meta }), this.inputs, this.actions,
      this.error, this.view, this.output);
    this.heading = heading;
  }

  get defaults() {
    return this.detail.defaults || {};
  }

  get optionNames() {
    return Object.keys((this.detail.options && this.detail.options.properties) || {});
  }

  onRun(handler) {
    const run = async () => {
      this.runButton.disabled = true;
      this.root.setAttribute("aria-busy", "true");
      try {
        await handler();
      } finally {
        this.runButton.disabled = false;
        this.root.removeAttribute("aria-busy");
      }
    };
    this.runButton.addEventListener("click", run);
    this.run = run;
  }

  showError(error) {
    this.error.replaceChildren(h("code", { text: error.code }), error.message);
    this.error.hidden = false;
  }

  clearError() {
    this.error.hidden = true;
    this.error.replaceChildren();
  }

  // The outcome of one call: the error, or the raw JSON; the snippets either way.
  show(result, snippets) {
    this.latency.textContent = `${Math.round(result.ms)} ms`;
    this.latency.dataset.ms = String(result.ms);
    this.curl.textContent = snippets.curl;
    this.python.textContent = snippets.python;
    this.raw.textContent = result.data === null || result.data === undefined ? "" : JSON.stringify(result.data, null, 2);
    this.output.hidden = false;
    if (result.ok) this.clearError();
    else {
      this.showError(result.error);
      this.view.replaceChildren();
    }
    this.root.dataset.state = result.ok ? "done" : "error";
  }

  // POST /v1/models/{name}/predict with a JSON body; an item's own error is shown as the panel's.
  async predict(body) {
    const path = `/v1/models/${encodeURIComponent(this.model.name)}/predict`;
    const result = await call(path, { json: body });
    return this.finish(result, jsonSnippets(path, body));
  }

  async predictForm(files, options) {
    const path = `/v1/models/${encodeURIComponent(this.model.name)}/predict`;
    const form = new FormData();
    for (const file of files) form.append("image", file.blob, file.name);
    const fields = {};
    if (options && Object.keys(options).length) {
      fields.options = JSON.stringify(options);
      form.append("options", fields.options);
    }
    const result = await call(path, { form });
    return this.finish(result, formSnippets(path, files.map((f) => ["image", f.name]), fields));
  }

  finish(result, snippets) {
    if (result.ok && result.data && Array.isArray(result.data.outputs)) {
      const failed = result.data.outputs.find((o) => o && o.error);
      if (failed && result.data.outputs.length === 1) {
        result = { ...result, ok: false, error: failed.error };
      }
    }
    this.show(result, snippets);
    return result;
  }
}

// A text area that runs its panel on Ctrl+Enter.
export function runOnCtrlEnter(panel, control) {
  control.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      panel.run();
    }
  });
}
