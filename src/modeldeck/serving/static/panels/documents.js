// Document Q&A over the server's index (MODELDECK_DOCUMENTS): a question in, the best passages out
// with their sources and scores, and the reader's answer highlighted in its passage when there is one.

import { Panel, call, jsonSnippets, runOnCtrlEnter } from "../lib/api.js";
import { field, fmt, h, slicer } from "../lib/dom.js";

const PATH = "/v1/documents/ask";

function where(p) {
  return [p.source, p.page === null ? null : `page ${p.page}`, `chars ${p.start}-${p.end}`].filter(Boolean).join(", ");
}

// The passage's text, with the answer marked when it lies in this passage (offsets are code points
// into the source document, like the passage's own).
function passageText(p, answer) {
  const cut = slicer(p.text);
  const length = Array.from(p.text).length;
  const inside = answer && answer.source === p.source && answer.start >= p.start && answer.end <= p.end;
  if (!inside) return h("p", { class: "passage-text", text: p.text });
  const [a, b] = [answer.start - p.start, answer.end - p.start];
  return h("p", { class: "passage-text" }, cut(0, a),
    h("mark", { class: "answer", dataset: { start: answer.start, end: answer.end }, text: cut(a, b) }), cut(b, length));
}

function describe(index) {
  const files = index.files.length === 1 ? "1 file" : `${index.files.length} files`;
  const reader = index.qa_model ? `reader ${index.qa_model}` : "no reader (set MODELDECK_DOCUMENTS_QA for answers)";
  return `${index.folder}: ${files}, ${index.chunks} chunks · embedded with ${index.model} · ${reader}`;
}

export function documents(root, model) {
  const panel = new Panel(root, model, { defaults: {} });
  const summary = h("p", { class: "index-summary hint", text: "Reading the index…" });
  const list = h("ul", { class: "files" });
  const question = h("input", { type: "text", value: "How many vacation days do I get?" });
  runOnCtrlEnter(panel, question);
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      panel.run();
    }
  });
  const topK = h("input", { type: "number", min: "1", max: "50", value: "5" });
  panel.runButton.textContent = "Ask";
  panel.inputs.append(summary, h("details", {}, h("summary", { text: "Files in the index" }), list),
    ...field("Question", question), ...field("Passages to show", topK));

  call("/v1/documents", { method: "GET" }).then((result) => {
    if (!result.ok) {
      panel.showError(result.error);
      summary.textContent = "";
      return;
    }
    summary.textContent = describe(result.data);
    list.replaceChildren(...result.data.files.map((f) => h("li", { text: `${f.source} (${f.chunks} chunks${f.pages ? `, ${f.pages} pages` : ""})` })));
  });

  panel.onRun(async () => {
    const body = { question: question.value, top_k: Number(topK.value) || 5 };
    const result = await call(PATH, { json: body });
    panel.show(result, jsonSnippets(PATH, body));
    if (!result.ok) return;
    const { answer, passages } = result.data;
    const view = [];
    if (answer) {
      view.push(h("p", { class: "doc-answer", dataset: { source: answer.source, start: answer.start, end: answer.end } },
        "Answer: ", h("strong", { text: answer.text }), ` · score ${fmt(answer.score)} · ${where(answer)}`));
    }
    view.push(h("ol", { class: "passages", "aria-label": "Passages, best first" }, passages.map((p) => h("li", {
      dataset: { source: p.source, start: p.start, end: p.end, score: String(p.score), page: p.page ?? "" },
    }, h("p", { class: "source" }, h("strong", { text: where(p) }), ` · score ${fmt(p.score)}`), passageText(p, answer)))));
    if (!passages.length) view.push(h("p", { class: "hint", text: "The index holds no passages." }));
    panel.view.replaceChildren(...view);
  });
  return panel;
}
