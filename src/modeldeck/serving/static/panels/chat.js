// generate and chat: tokens stream in as they are decoded, through the OpenAI-compatible routes
// (POST /v1/chat/completions or /v1/completions with "stream": true, read as server-sent events).

import { ORIGIN, Panel, apiKey, authHeaders, errorOf, networkError, pyLiteral } from "../lib/api.js";
import { field, h } from "../lib/dom.js";
import { createParser } from "../vendor/eventsource-parser/index.js";

function snippets(route, body, isChat) {
  const url = ORIGIN + route;
  const json = JSON.stringify(body).replaceAll("'", "'\\''");
  const args = Object.entries(body).filter(([k]) => k !== "stream")
    .map(([k, v]) => `    ${k}=${pyLiteral(v, "    ")},`).join("\n");
  // With a key in use it comes from $MODELDECK_API_KEY (the openai client's own api_key=); never printed.
  const keyed = Boolean(apiKey());
  const pyKey = keyed ? `os.environ["MODELDECK_API_KEY"]` : `"unused"`;
  const pyHead = keyed ? "import os\n\nfrom openai import OpenAI" : "from openai import OpenAI";
  const curlKey = keyed ? ` \\\n  -H "Authorization: Bearer $MODELDECK_API_KEY"` : "";
  const python = isChat
    ? `${pyHead}\n\nclient = OpenAI(base_url=${JSON.stringify(`${ORIGIN}/v1`)}, api_key=${pyKey})\nstream = client.chat.completions.create(\n${args}\n    stream=True,\n)\nfor chunk in stream:\n    if chunk.choices:\n        print(chunk.choices[0].delta.content or "", end="", flush=True)`
    : `${pyHead}\n\nclient = OpenAI(base_url=${JSON.stringify(`${ORIGIN}/v1`)}, api_key=${pyKey})\nstream = client.completions.create(\n${args}\n    stream=True,\n)\nfor chunk in stream:\n    if chunk.choices:\n        print(chunk.choices[0].text, end="", flush=True)`;
  return { curl: `curl -sN ${url}${curlKey} \\\n  -H 'content-type: application/json' \\\n  -d '${json}'`, python };
}

// POSTs one streaming request; onText gets each piece. Resolves to {ok, ms, firstMs, chunks, error}.
export async function stream(route, body, onText, signal) {
  const started = performance.now();
  let firstMs = null;
  const chunks = [];
  let error = null;
  let response;
  try {
    response = await fetch(route, {
      method: "POST", signal, headers: { ...authHeaders(), "content-type": "application/json" }, body: JSON.stringify(body),
    });
  } catch (err) {
    return { ok: false, ms: performance.now() - started, chunks, error: networkError(err) };
  }
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    return { ok: false, ms: performance.now() - started, chunks, data, error: errorOf(data, response) };
  }
  const parser = createParser({
    onEvent(event) {
      if (event.data === "[DONE]") return;
      let chunk;
      try { chunk = JSON.parse(event.data); } catch { return; }
      chunks.push(chunk);
      if (chunk.error) {
        error = { code: String(chunk.error.code ?? "error"), message: String(chunk.error.message ?? "") };
        return;
      }
      for (const choice of chunk.choices || []) {
        const text = choice.delta ? choice.delta.content : choice.text;
        if (text) {
          if (firstMs === null) firstMs = performance.now() - started;
          onText(text);
        }
      }
    },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } catch (err) {
    error = networkError(err);
  }
  return { ok: error === null, ms: performance.now() - started, firstMs, chunks, error };
}

function controls(panel) {
  const temperature = h("input", { type: "range", min: "0", max: "2", step: "0.1", value: "0" });
  const shown = h("output", { text: "0 (greedy)" });
  temperature.addEventListener("input", () => {
    shown.textContent = temperature.value === "0" ? "0 (greedy)" : temperature.value;
  });
  const maxTokens = h("input", { type: "number", min: "1", max: "4096", value: "48" });
  const temperatureId = `${panel.model.name}-temperature`;
  temperature.id = temperatureId;
  shown.setAttribute("for", temperatureId);
  const box = h("div", { class: "controls" },
    h("span", {}, h("label", { class: "inline", for: temperatureId, text: "Temperature" }), temperature, " ", shown),
    h("span", {}, ...field("Max tokens", maxTokens)));
  box.querySelector(`label[for="${maxTokens.id}"]`).className = "inline";
  return { box, temperature, maxTokens };
}

function chatPanel(root, model, detail, isChat) {
  const panel = new Panel(root, model, detail);
  const log = h("div", { class: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const input = h("textarea", { rows: 3 });
  input.value = isChat ? "Hello! Tell me a short story about a robot." : "Once upon a time";
  const { box, temperature, maxTokens } = controls(panel);
  const stop = h("button", { type: "button", class: "secondary stop", text: "Stop", disabled: true });
  const clear = h("button", { type: "button", class: "secondary", text: isChat ? "New conversation" : "Clear" });
  panel.runButton.textContent = isChat ? "Send" : "Generate";
  panel.actions.insertBefore(stop, panel.latency);
  panel.actions.insertBefore(clear, panel.latency);
  panel.inputs.append(log, ...field(isChat ? "Your message (Enter sends, Shift+Enter for a new line)" : "Prompt (Enter generates)", input), box);
  const history = [];
  let controller = null;
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      if (!panel.runButton.disabled) panel.run();
    }
  });
  stop.addEventListener("click", () => controller && controller.abort());
  clear.addEventListener("click", () => {
    history.length = 0;
    log.replaceChildren();
  });

  panel.onRun(async () => {
    const text = input.value;
    if (!text.trim()) return;
    const options = { temperature: Number(temperature.value), max_tokens: Number(maxTokens.value) || 48 };
    let route;
    let body;
    let reply;
    if (isChat) {
      history.push({ role: "user", content: text });
      log.append(h("div", { class: "msg user" }, h("span", { class: "role", text: "you" }), text));
      route = "/v1/chat/completions";
      body = { model: model.name, messages: history.slice(), ...options, stream: true };
      reply = h("span", { class: "content" });
      log.append(h("div", { class: "msg assistant", dataset: { streaming: "true" } }, h("span", { class: "role", text: model.name }), reply));
    } else {
      route = "/v1/completions";
      body = { model: model.name, prompt: text, ...options, stream: true };
      reply = h("span", { class: "content" });
      log.replaceChildren(h("div", { class: "msg completion", dataset: { streaming: "true" } },
        h("span", { class: "role", text: "prompt + completion" }), h("strong", { text }), reply));
    }
    input.value = "";
    controller = new AbortController();
    stop.disabled = false;
    const result = await stream(route, body, (piece) => { reply.append(piece); }, controller.signal);
    stop.disabled = true;
    controller = null;
    reply.parentElement.dataset.streaming = "false";
    if (isChat && reply.textContent) history.push({ role: "assistant", content: reply.textContent });
    const ms = result.firstMs === null ? `${Math.round(result.ms)} ms` : `first token ${Math.round(result.firstMs)} ms · total ${Math.round(result.ms)} ms`;
    panel.show({ ...result, data: result.data ?? result.chunks }, snippets(route, body, isChat));
    panel.latency.textContent = ms;
    if (!result.ok && result.error.code === "stopped") panel.clearError();
    const finish = result.chunks.map((c) => c.choices && c.choices[0] && c.choices[0].finish_reason).filter(Boolean).pop();
    reply.parentElement.dataset.finish = finish || (result.ok ? "" : "stopped");
    input.focus();
  });
  return panel;
}

export function chat(root, model, detail) {
  return chatPanel(root, model, detail, true);
}

export function generate(root, model, detail) {
  return chatPanel(root, model, detail, false);
}
