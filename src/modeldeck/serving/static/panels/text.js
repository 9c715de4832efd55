// Panels for the text tasks: ner, parse, embed, classify, qa, translate.

import { Panel, runOnCtrlEnter } from "../lib/api.js";
import { field, fmt, h, labelColour, loadScript, slicer } from "../lib/dom.js";

const SAMPLE = "Tim Cook visited Paris on Monday with 3 engineers from Apple, and met Angela Merkel in Berlin.";

function textInput(panel, label, value, rows = 4) {
  const area = h("textarea", { rows, spellcheck: "false" });
  area.value = value;
  panel.inputs.append(...field(label, area));
  runOnCtrlEnter(panel, area);
  return area;
}

// --- ner ----------------------------------------------------------------------------------------------

export function ner(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const text = textInput(panel, "Text", SAMPLE);
  panel.onRun(async () => {
    const input = text.value;
    const result = await panel.predict({ inputs: input });
    if (!result.ok) return;
    const entities = result.data.outputs[0].entities;
    const cut = slicer(input);
    const length = Array.from(input).length;
    const out = h("div", { class: "ner-text", "aria-label": "Text with its entities highlighted" });
    let at = 0;
    for (const entity of [...entities].sort((a, b) => a.start - b.start)) {
      if (entity.start < at) continue; // overlapping spans (a span ruler can make them): the first wins
      out.append(cut(at, entity.start));
      const mark = h("mark", {
        class: "entity", dataset: { label: entity.label, start: entity.start, end: entity.end },
        title: entity.score === null ? entity.label : `${entity.label} ${fmt(entity.score)}`,
      }, h("span", { class: "entity-text", text: cut(entity.start, entity.end) }),
      h("span", { class: "entity-label", text: entity.label }));
      mark.style.setProperty("--c", labelColour(entity.label));
      out.append(mark);
      at = entity.end;
    }
    out.append(cut(at, length));
    const labels = [...new Set(entities.map((e) => e.label))].sort();
    const legend = h("ul", { class: "legend", "aria-label": "Entity labels" }, labels.map((label) => {
      const item = h("li", { text: label });
      item.style.setProperty("--c", labelColour(label));
      return item;
    }));
    panel.view.replaceChildren(out, labels.length ? legend : h("p", { class: "hint", text: "No entities found." }));
  });
  return panel;
}

// --- parse --------------------------------------------------------------------------------------------

export function parse(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const text = textInput(panel, "Text", "The quick brown fox jumped over the lazy dog near the river bank.", 3);
  panel.onRun(async () => {
    const [result] = await Promise.all([panel.predict({ inputs: text.value }), loadScript("/playground/vendor/displacy/displacy.js")]);
    if (!result.ok) return;
    const { tokens, sentences } = result.data.outputs[0];
    const parts = [];
    const spans = sentences.length ? sentences : [{ token_start: 0, token_end: tokens.length }];
    for (const sentence of spans) {
      const words = [];
      const arcs = [];
      for (let i = sentence.token_start; i < sentence.token_end; i += 1) {
        const token = tokens[i];
        words.push({ text: token.text, tag: token.pos });
        if (token.head !== i) {
          const [a, b] = [i - sentence.token_start, token.head - sentence.token_start];
          arcs.push({ start: Math.min(a, b), end: Math.max(a, b), label: token.dep, dir: token.head > i ? "left" : "right" });
        }
      }
      const box = h("div", { class: "arcs", tabindex: "0", role: "img", "aria-label": `Dependency arcs of: ${sentence.text ?? ""}` });
      // displaCy is a classic script: its class is a global binding.
      // eslint-disable-next-line no-undef
      const renderer = new displaCy("", { container: box, distance: 100, offsetX: 40, wordSpacing: 45, arrowSpacing: 12, arrowWidth: 8, arrowStroke: 2 });
      renderer.render({ words, arcs }, { color: "#111827", bg: "#ffffff" });
      parts.push(box);
    }
    const table = h("table", {},
      h("caption", { class: "hint", text: "Tokens" }),
      h("thead", {}, h("tr", {}, ["#", "text", "lemma", "pos", "tag", "dep", "head"].map((c) => h("th", { scope: "col", text: c })))),
      h("tbody", {}, tokens.map((t, i) => h("tr", {}, [i, t.text, t.lemma, t.pos, t.tag, t.dep, t.head].map((c) => h("td", { text: String(c) }))))));
    panel.view.replaceChildren(...parts, h("details", {}, h("summary", { text: "Token table" }), table));
  });
  return panel;
}

// --- embed: several texts, a cosine-similarity heat map -----------------------------------------------

export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i += 1) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

export function embed(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const text = textInput(panel, "Texts, one per line",
    "A cat sits on the mat.\nA kitten rests on a rug.\nThe stock market fell today.\nShares dropped sharply this morning.", 5);
  panel.onRun(async () => {
    const texts = text.value.split("\n").map((t) => t.trim()).filter(Boolean);
    const result = await panel.predict({ inputs: texts });
    if (!result.ok) return;
    const outputs = result.data.outputs;
    const vectors = outputs.map((o) => (o.vector ? o.vector : null));
    const rows = texts.map((t, i) => h("tr", {}, h("th", { scope: "row", title: t, text: t }), texts.map((_, j) => {
      if (!vectors[i] || !vectors[j]) return h("td", { text: "–" });
      const value = cosine(vectors[i], vectors[j]);
      const cell = h("td", { text: value.toFixed(2), dataset: { value: String(value) } });
      // Light blue to strong blue, dark text stays readable (lightness never below 62%).
      cell.style.backgroundColor = `hsl(217 90% ${Math.round(97 - 35 * Math.max(0, value))}%)`;
      return cell;
    })));
    const dims = vectors.find(Boolean)?.length ?? 0;
    const failed = outputs.map((o, i) => (o.error ? h("li", {}, `line ${i + 1}: `, h("code", { text: o.error.code }), ` ${o.error.message}`) : null)).filter(Boolean);
    panel.view.replaceChildren(
      h("table", { class: "heat" }, h("caption", { text: `Cosine similarity of ${texts.length} texts (${dims}-dimensional vectors)` }),
        h("thead", {}, h("tr", {}, h("td"), texts.map((t, j) => h("th", { scope: "col", title: t, text: `${j + 1}. ${t.slice(0, 18)}` })))),
        h("tbody", {}, rows)),
      failed.length ? h("ul", { class: "error" }, failed) : null);
  });
  return panel;
}

// --- classify: sorted bars ----------------------------------------------------------------------------

export function bars(labels) {
  const sorted = [...labels].sort((a, b) => b.score - a.score);
  return h("ul", { class: "bars", "aria-label": "Labels by score" }, sorted.map((item) => {
    const fill = h("div", { class: "fill" });
    fill.style.width = `${Math.max(0, Math.min(1, item.score)) * 100}%`;
    return h("li", { dataset: { label: item.label, score: String(item.score) } },
      h("span", { class: "label", text: item.label }), h("div", { class: "bar", "aria-hidden": "true" }, fill),
      h("span", { class: "score", text: fmt(item.score) }));
  }));
}

export function classify(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const text = textInput(panel, "Text", "What a wonderful, surprising film: I would watch it again tomorrow.", 3);
  panel.onRun(async () => {
    const result = await panel.predict({ inputs: text.value });
    if (!result.ok) return;
    const out = result.data.outputs[0];
    panel.view.replaceChildren(bars(out.labels), out.truncated ? h("p", { class: "hint", text: "The text was cut to the model's window." }) : null);
  });
  return panel;
}

// --- qa: the answer highlighted in its context --------------------------------------------------------

export function qa(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const question = h("input", { type: "text", value: "Where did Tim Cook go?" });
  panel.inputs.append(...field("Question", question));
  const context = textInput(panel, "Context", "Tim Cook visited Paris on Monday. He met engineers at the Apple store near the Louvre.", 5);
  const topK = h("input", { type: "number", min: "1", max: "20", value: "3" });
  panel.inputs.append(...field("Answers to show", topK));
  panel.onRun(async () => {
    const text = context.value;
    const options = { top_k: Number(topK.value) || 1 };
    const result = await panel.predict({ inputs: { question: question.value, context: text }, options });
    if (!result.ok) return;
    const answers = result.data.outputs[0].answers;
    const cut = slicer(text);
    const view = [];
    if (answers.length) {
      const best = answers[0];
      view.push(h("p", { class: "context", "aria-label": "Context with the best answer highlighted" },
        cut(0, best.start),
        h("mark", { class: "answer", dataset: { start: best.start, end: best.end }, text: cut(best.start, best.end) }),
        cut(best.end, Array.from(text).length)));
    }
    view.push(h("ol", {}, answers.map((a) => h("li", {}, h("strong", { text: a.text }), ` score ${fmt(a.score)}`))));
    if (!answers.length) view.push(h("p", { class: "hint", text: "No answer in this context." }));
    panel.view.replaceChildren(...view);
  });
  return panel;
}

// --- translate: source and translation side by side ---------------------------------------------------

export function translate(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const text = textInput(panel, "Source text", "The weather is nice today. We are going to the beach.", 4);
  const langs = {};
  for (const name of ["source_lang", "target_lang"]) {
    if (panel.optionNames.includes(name)) {
      langs[name] = h("input", { type: "text", placeholder: "the model's default" });
      panel.inputs.append(...field(name === "source_lang" ? "Source language code (multilingual models)" : "Target language code (multilingual models)", langs[name]));
    }
  }
  panel.onRun(async () => {
    const options = {};
    for (const [name, input] of Object.entries(langs)) if (input.value.trim()) options[name] = input.value.trim();
    const result = await panel.predict({ inputs: text.value, options });
    if (!result.ok) return;
    const out = result.data.outputs[0];
    panel.view.replaceChildren(h("div", { class: "side" },
      h("div", { class: "source" }, h("h3", { text: `Source${out.source_lang ? ` (${out.source_lang})` : ""}` }), text.value),
      h("div", { class: "target" }, h("h3", { text: `Translation${out.target_lang ? ` (${out.target_lang})` : ""}` }), out.text)));
  });
  return panel;
}
