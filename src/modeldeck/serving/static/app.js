// The playground's entry: the sidebar of served models, one panel per model shaped by its task,
// and the live metrics strip. Everything goes through the public HTTP API.

import { call, setApiKey } from "./lib/api.js";
import { h } from "./lib/dom.js";
import { startMetrics } from "./lib/metrics.js";

// Which module draws which task's panel (loaded on first use, so the first load stays small).
const PANELS = {
  ner: ["./panels/text.js", "ner"],
  parse: ["./panels/text.js", "parse"],
  embed: ["./panels/text.js", "embed"],
  classify: ["./panels/text.js", "classify"],
  qa: ["./panels/text.js", "qa"],
  translate: ["./panels/text.js", "translate"],
  generate: ["./panels/chat.js", "generate"],
  chat: ["./panels/chat.js", "chat"],
  detect: ["./panels/image.js", "boxes"],
  segment: ["./panels/image.js", "boxes"],
  "face-detect": ["./panels/image.js", "boxes"],
  "face-embed": ["./panels/image.js", "boxes"],
  "classify-image": ["./panels/image.js", "classifyImage"],
  "face-verify": ["./panels/image.js", "verify"],
  gallery: ["./panels/image.js", "gallery"],
  documents: ["./panels/documents.js", "documents"],
};
// Sidebar entries for the server's other surfaces (not models: they have no /v1/models/{name}).
const SURFACES = {
  gallery: { name: "gallery", task: "gallery", ready: true, meta: "identify faces in the server's gallery",
    description: "the server's face gallery (MODELDECK_GALLERY), under /v1/gallery" },
  documents: { name: "documents", task: "documents", ready: true, meta: "ask the server's documents, with sources",
    description: "document Q&A over the server's index (MODELDECK_DOCUMENTS), under /v1/documents" },
};
const GENERIC = ["./panels/json.js", "json"];

const list = document.getElementById("model-list");
const main = document.getElementById("panel");
const state = { models: [], current: null, firstPanel: true, documents: false, metrics: false };

function entry(model) {
  const meta = model.meta
    ?? [model.version && `v${model.version}`, model.runtime, model.license].filter(Boolean).join(" · ");
  const button = h("button", { type: "button", dataset: { model: model.name }, disabled: !model.ready },
    h("span", { class: "name", text: model.name }),
    h("span", { class: "task", text: model.task }),
    h("span", { class: "meta", text: model.ready ? meta : "loading…" }));
  button.addEventListener("click", () => {
    window.location.hash = `#${encodeURIComponent(model.name)}`;
  });
  return h("li", {}, button);
}

function renderList() {
  list.replaceChildren(...state.models.map(entry));
  for (const button of list.querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.model === state.current));
  }
}

// A server started with --api-key answers 401: ask for the key, then open the page again with it.
function askForKey(error) {
  const input = h("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "off", required: true });
  const form = h("form", { class: "key-form" },
    h("label", { for: "api-key", text: "API key" }), input, h("button", { type: "submit", text: "Use key" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    openPage();
  });
  main.replaceChildren(
    h("div", { class: "error", role: "alert" }, h("code", { text: error.code }), error.message),
    h("p", { class: "hint", text: "This server needs an API key. The page keeps it for this tab only and sends "
      + "it as Authorization: Bearer; the curl and Python calls read it from $MODELDECK_API_KEY." }),
    form);
  input.focus();
}

// true when every model is ready, false while some load, null when the server wants a key first.
async function loadModels() {
  const result = await call("/v1/models", { method: "GET" });
  if (result.status === 401) {
    setApiKey("");
    askForKey(result.error);
    return null;
  }
  if (!result.ok) {
    main.replaceChildren(h("div", { class: "error", role: "alert" }, h("code", { text: result.error.code }),
      result.error.message));
    return false;
  }
  const models = result.data.models;
  // The gallery panel shows when the server has one (200), or has one configured that nobody is
  // enrolled in yet (404 "does not exist yet"); a server without MODELDECK_GALLERY answers 404 too.
  const gallery = await call("/v1/gallery/people", { method: "GET" });
  if (gallery.ok || (gallery.status === 404 && /does not exist yet/.test(gallery.error.message))) {
    models.push(SURFACES.gallery);
  }
  if (state.documents) models.push(SURFACES.documents);
  state.models = models; // one assignment: the documents probe may land while the gallery is asked
  renderList();
  return state.models.every((m) => m.ready);
}

async function show(name) {
  const model = state.models.find((m) => m.name === name) || state.models.find((m) => m.ready);
  if (!model) {
    main.replaceChildren(h("p", { class: "hint", text: "No model is served yet." }));
    return;
  }
  state.current = model.name;
  renderList();
  main.dataset.model = model.name;
  main.dataset.task = model.task;
  main.removeAttribute("data-ready");
  let detail = {};
  if (!SURFACES[model.task]) {
    const result = await call(`/v1/models/${encodeURIComponent(model.name)}`, { method: "GET" });
    if (!result.ok) {
      main.replaceChildren(h("div", { class: "error", role: "alert" }, h("code", { text: result.error.code }),
        result.error.message));
      return;
    }
    detail = result.data;
  }
  if (state.current !== model.name) return; // another model was picked meanwhile
  const [path, exported] = PANELS[model.task] || GENERIC;
  const module = await import(path);
  const panel = module[exported](main, model, detail);
  main.dataset.ready = "true";
  if (state.firstPanel) {
    state.firstPanel = false;
    performance.mark("modeldeck:first-panel-interactive");
  } else {
    panel.heading.focus();
  }
}

function selected() {
  return decodeURIComponent(window.location.hash.slice(1));
}

// The documents entry shows when GET /v1/documents answers 200. Its first answer opens the index
// (and loads its embedding model), so it is asked for beside the first panel, not before it.
async function probeDocuments() {
  const documents = await call("/v1/documents", { method: "GET" });
  if (!documents.ok) return;
  state.documents = true;
  if (!state.models.includes(SURFACES.documents)) state.models.push(SURFACES.documents);
  renderList();
  if (selected() === "documents" && state.current !== "documents") await show("documents");
}

async function openPage() {
  let ready = await loadModels();
  if (ready === null) return; // the key form calls openPage() again
  probeDocuments();
  await show(selected());
  if (!state.metrics) {
    state.metrics = true;
    startMetrics(document.getElementById("strip"));
  }
  // Models still loading: poll until they are all ready, refreshing the sidebar.
  while (!ready) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    ready = await loadModels();
    if (ready === null) return;
    if (!main.dataset.ready) await show(selected());
  }
}

window.addEventListener("hashchange", () => show(selected()));
openPage();
