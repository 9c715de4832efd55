// Image panels: pick, drop or paste a photo (or use a sample); boxes, masks, landmarks and
// faces drawn over it; a confidence slider that filters without a new request; face-verify
// with two photos; identification against the server's face gallery; image classification.

import { Panel, call, formSnippets } from "../lib/api.js";
import { field, fmt, h, labelColour, s, uid } from "../lib/dom.js";
import { decodeMask } from "../lib/rle.js";
import { bars } from "./text.js";

const SAMPLES = [["astronaut", "astronaut.jpg"], ["cat", "chelsea.jpg"], ["coffee", "coffee.jpg"]];

// A drop zone with a file button, paste support and sample photos; onPick({blob, name}).
function picker(labelText, onPick) {
  const input = h("input", { type: "file", accept: "image/*", id: uid("file") });
  const zone = h("div", { class: "picker", role: "group", "aria-label": labelText },
    input, h("label", { for: input.id, class: "file-button", text: "Choose a photo…" }),
    h("span", { class: "hint", text: "or drop one here, or paste it (Ctrl+V), or try a sample:" }),
    SAMPLES.map(([title, file]) => {
      const button = h("button", { type: "button", class: "secondary sample", dataset: { sample: file }, text: title });
      button.addEventListener("click", async () => {
        const response = await fetch(`/playground/samples/${file}`);
        onPick({ blob: await response.blob(), name: file });
      });
      return button;
    }));
  input.addEventListener("change", () => {
    if (input.files.length) onPick({ blob: input.files[0], name: input.files[0].name });
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (file) onPick({ blob: file, name: file.name });
  });
  zone.pick = onPick;
  return zone;
}

// Paste lands in the panel's (first empty) picker; assigned, not added, so panels do not pile up.
function acceptPaste(root, pickers) {
  root.onpaste = (event) => {
    const item = [...event.clipboardData.items].find((i) => i.type.startsWith("image/"));
    if (!item) return;
    event.preventDefault();
    const target = pickers.find((p) => !p.picked) || pickers[0];
    target.pick({ blob: item.getAsFile(), name: "pasted.png" });
  };
}

// The photo with an SVG overlay (boxes) and a canvas (masks) in its own pixel coordinates.
function stage(file, caption) {
  const img = h("img", { alt: caption || `the photo ${file.name}` });
  const figure = h("figure", { class: "stage" }, img);
  const loaded = new Promise((resolve, reject) => {
    img.addEventListener("load", () => resolve({ width: img.naturalWidth, height: img.naturalHeight }));
    img.addEventListener("error", () => reject(new Error("not an image the browser can show")));
  });
  img.src = URL.createObjectURL(file.blob);
  return { figure, img, loaded };
}

function noImage(panel) {
  panel.showError({ code: "no image", message: "pick, drop or paste a photo first (or use a sample photo)" });
}

function itemsOf(task, out) {
  if (task === "detect") return out.detections;
  if (task === "segment") return out.instances;
  return out.faces || [];
}

// --- detect, segment, face-detect, face-embed ---------------------------------------------------------

export function boxes(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const task = model.task;
  const probabilities = task === "detect" || task === "segment";
  const defaults = panel.defaults;
  const initial = probabilities ? (defaults.confidence ?? 0.25) : (defaults.threshold ?? 0);
  // Ask for everything above a low floor once; the slider then filters in the page.
  const floor = probabilities ? Math.min(initial, 0.05) : null;
  const slider = h("input", { type: "range", min: "0", max: "1", step: "0.01", value: String(initial), class: "confidence" });
  const shown = h("output", { class: "shown" });
  const tip = h("p", { class: "tip", "aria-live": "polite" });
  let current = null;
  let drawn = null;
  const pick = picker("Photo", (file) => {
    current = file;
    pick.picked = true;
    panel.run();
  });
  acceptPaste(root, [pick]);
  slider.id = uid("confidence");
  panel.inputs.append(pick, h("div", { class: "controls" },
    h("label", { class: "inline", for: slider.id, text: probabilities ? "Confidence at least" : "Score at least" }), slider, shown));

  function filter() {
    if (!drawn) return;
    const threshold = Number(slider.value);
    let visible = 0;
    drawn.groups.forEach((g, i) => {
      const keep = drawn.items[i].score >= threshold;
      g.classList.toggle("filtered", !keep);
      if (keep) visible += 1;
    });
    shown.textContent = `${fmt(threshold, 2)}: ${visible} of ${drawn.items.length} shown`;
    drawn.figure.dataset.visible = String(visible);
    if (drawn.masks) paintMasks(drawn, threshold);
  }
  slider.addEventListener("input", filter);
  shown.textContent = fmt(initial, 2);

  panel.onRun(async () => {
    if (!current) return noImage(panel);
    const options = probabilities ? { confidence: floor } : {};
    const view = stage(current);
    const [result, size] = await Promise.all([panel.predictForm([current], options), view.loaded.catch(() => null)]);
    if (!result.ok) return;
    const out = result.data.outputs[0];
    const items = itemsOf(task, out);
    const width = out.width || size?.width || 1;
    const height = out.height || size?.height || 1;
    if (!probabilities) {
      const top = Math.max(1, ...items.map((i) => i.score));
      slider.max = String(Math.ceil(top * 100) / 100);
      slider.min = String(Math.min(0, ...items.map((i) => i.score)));
    }
    drawn = draw(view, items, width, height, tip, task);
    panel.view.replaceChildren(view.figure, tip, summary(task, out, items));
    filter();
  });
  return panel;
}

function summary(task, out, items) {
  const what = task === "segment" ? "instances" : task.startsWith("face") ? "faces" : "detections";
  const extra = task === "face-embed" && items[0] && items[0].vector ? `, each with a ${items[0].vector.length}-dimensional vector` : "";
  return h("p", { class: "hint", text: `${items.length} ${what} from the model${extra}; hover or tab to a box for its label and score.` });
}

function draw(view, items, width, height, tip, task) {
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "group", "aria-label": "Detections" });
  const font = Math.max(12, Math.round(width / 45));
  const groups = items.map((item, i) => {
    const [x1, y1, x2, y2] = item.box;
    const label = item.label ?? item.name ?? (task.startsWith("face") ? "face" : `#${i}`);
    const text = `${label} ${fmt(item.score, 2)}`;
    const g = s("g", { class: "det", tabindex: "0", dataset: { score: String(item.score), label, index: String(i) } },
      s("title", { text }),
      s("rect", { x: x1, y: y1, width: Math.max(1, x2 - x1), height: Math.max(1, y2 - y1) }),
      s("text", { x: x1 + 4, y: Math.max(font, y1 - 4), "font-size": font, fill: "#ffffff", stroke: "#111827", "stroke-width": font / 8, "paint-order": "stroke" , text }));
    g.style.setProperty("--c", labelColour(label, 45));
    for (const [x, y] of item.landmarks || []) g.append(s("circle", { cx: x, cy: y, r: Math.max(1.5, width / 250) }));
    const say = () => { tip.textContent = `${label}: score ${fmt(item.score)} · box ${item.box.map((v) => Math.round(v)).join(", ")}`; };
    g.addEventListener("mouseenter", say);
    g.addEventListener("focus", say);
    svg.append(g);
    return g;
  });
  view.figure.append(svg);
  let masks = null;
  if (task === "segment") {
    const canvas = h("canvas", { width, height, "aria-hidden": "true" });
    view.figure.insertBefore(canvas, svg);
    masks = { canvas, decoded: items.map((item) => decodeMask(item.mask)) };
    groups.forEach((g, i) => { g.dataset.maskPixels = String(masks.decoded[i].area); });
  }
  return { figure: view.figure, groups, items, masks };
}

function paintMasks(drawn, threshold) {
  const { canvas, decoded } = drawn.masks;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  let painted = 0;
  decoded.forEach((m, i) => {
    if (drawn.items[i].score < threshold || m.width !== canvas.width || m.height !== canvas.height) return;
    const hue = (i * 67) % 360;
    const [r, g, b] = hslToRgb(hue / 360, 0.8, 0.5);
    for (let p = 0; p < m.mask.length; p += 1) {
      if (!m.mask[p]) continue;
      const o = p * 4;
      if (image.data[o + 3] === 0) painted += 1;
      image.data[o] = r;
      image.data[o + 1] = g;
      image.data[o + 2] = b;
      image.data[o + 3] = 110;
    }
  });
  ctx.putImageData(image, 0, 0);
  canvas.dataset.painted = String(painted);
}

function hslToRgb(hue, sat, light) {
  const f = (n) => {
    const k = (n + hue * 12) % 12;
    const a = sat * Math.min(light, 1 - light);
    return Math.round(255 * (light - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

// --- classify-image -----------------------------------------------------------------------------------

export function classifyImage(root, model, detail) {
  const panel = new Panel(root, model, detail);
  let current = null;
  const pick = picker("Photo", (file) => { current = file; pick.picked = true; panel.run(); });
  acceptPaste(root, [pick]);
  panel.inputs.append(pick);
  panel.onRun(async () => {
    if (!current) return noImage(panel);
    const view = stage(current);
    const result = await panel.predictForm([current], {});
    if (!result.ok) return;
    panel.view.replaceChildren(view.figure, bars(result.data.outputs[0].labels));
  });
  return panel;
}

// "Use the largest face": a photo with several faces is otherwise refused (MD code in the panel).
function largestBox() {
  const input = h("input", { type: "checkbox", id: uid("largest"), checked: true, class: "largest" });
  const box = h("p", {}, h("label", { class: "inline", for: input.id }, input,
    "Use the largest face of a photo that holds several"));
  return { box, input };
}

// --- face-verify: two photos, one verdict -------------------------------------------------------------

export function verify(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const chosen = [null, null];
  const previews = [h("div", { class: "preview" }), h("div", { class: "preview" })];
  const pickers = [0, 1].map((i) => {
    const p = picker(i ? "Second photo" : "First photo", (file) => {
      chosen[i] = file;
      p.picked = true;
      previews[i].replaceChildren(stage(file, `${i ? "second" : "first"} photo`).figure);
      if (chosen[0] && chosen[1]) panel.run();
    });
    return p;
  });
  acceptPaste(root, pickers);
  const largest = largestBox();
  panel.inputs.append(largest.box, h("div", { class: "pair" },
    h("div", {}, h("h3", { text: "First photo" }), pickers[0], previews[0]),
    h("div", {}, h("h3", { text: "Second photo" }), pickers[1], previews[1])));
  panel.onRun(async () => {
    if (!chosen[0] || !chosen[1]) return noImage(panel);
    const result = await panel.predictForm(chosen, largest.input.checked ? { largest: true } : {});
    if (!result.ok) return;
    const v = result.data.outputs[0];
    panel.view.replaceChildren(
      h("p", { class: `verdict ${v.match ? "yes" : "no"}`, dataset: { match: String(v.match) }, text: v.match ? "Same person" : "Different people" }),
      h("p", { text: `${v.metric} distance ${fmt(v.distance)} (a match is at most ${fmt(v.threshold)}) · confidence ${fmt(v.confidence, 2)} · faces found: ${v.faces.join(" and ")}` }));
  });
  return panel;
}

// --- the face gallery: identify, enrol ----------------------------------------------------------------

export function gallery(root, model) {
  const panel = new Panel(root, model, { defaults: {} });
  const people = h("p", { class: "people hint" });
  const tip = h("p", { class: "tip", "aria-live": "polite" });
  let current = null;
  const pick = picker("Photo to identify", (file) => { current = file; pick.picked = true; panel.run(); });
  const name = h("input", { type: "text", placeholder: "e.g. ada" });
  let enrolling = null;
  const enrolPick = picker("Photo to enrol", (file) => { enrolling = file; enrolPick.picked = true; });
  const enrolButton = h("button", { type: "button", class: "secondary", text: "Enrol" });
  acceptPaste(root, [pick]);
  const largest = largestBox();
  panel.runButton.textContent = "Identify";
  panel.inputs.append(people, largest.box, pick,
    h("details", {}, h("summary", { text: "Enrol someone" }), ...field("Name", name), enrolPick, h("div", { class: "actions" }, enrolButton)));

  async function refresh() {
    const result = await call("/v1/gallery/people", { method: "GET" });
    people.textContent = result.ok
      ? `Enrolled: ${result.data.people.map((p) => `${p.name} (${p.images})`).join(", ") || "nobody yet"} · ${result.data.metric} threshold ${fmt(result.data.threshold)}`
      : "Nobody is enrolled yet.";
  }
  refresh();

  enrolButton.addEventListener("click", async () => {
    if (!enrolling || !name.value.trim()) {
      panel.showError({ code: "incomplete", message: "give a name and a photo to enrol" });
      return;
    }
    const path = `/v1/gallery/people/${encodeURIComponent(name.value.trim())}/images`;
    const form = new FormData();
    form.append("images", enrolling.blob, enrolling.name);
    const fields = largest.input.checked ? { largest: "true" } : {};
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    const result = await call(path, { form });
    panel.show(result, formSnippets(path, [["images", enrolling.name]], fields));
    if (result.ok) {
      panel.view.replaceChildren(h("p", { text: `Enrolled ${result.data.added.length} face(s) of ${result.data.name}; skipped ${result.data.skipped.length}.` }));
      refresh();
    }
  });

  panel.onRun(async () => {
    if (!current) return noImage(panel);
    const path = "/v1/gallery/identify";
    const form = new FormData();
    form.append("image", current.blob, current.name);
    const fields = largest.input.checked ? { largest: "true" } : {};
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    const view = stage(current);
    const [result, size] = await Promise.all([call(path, { form }), view.loaded.catch(() => null)]);
    panel.show(result, formSnippets(path, [["image", current.name]], fields));
    if (!result.ok) return;
    const faces = result.data.faces.map((f) => ({ ...f, label: f.name ?? "unknown" }));
    draw(view, faces, size?.width || 1, size?.height || 1, tip, "face-identify");
    panel.view.replaceChildren(view.figure, tip,
      h("ul", {}, faces.map((f) => h("li", { text: `${f.label}${f.distance === null ? "" : ` (distance ${fmt(f.distance)})`}` }))));
  });
  return panel;
}
