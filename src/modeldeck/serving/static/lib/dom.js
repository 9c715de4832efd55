// Small DOM helpers: elements are built with DOM calls only (no innerHTML), so model output is never markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

let ids = 0;
export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

// A labelled control: the label is tied to the control by id, for screen readers and axe.
export function field(labelText, control) {
  control.id = control.id || uid();
  return [h("label", { for: control.id, text: labelText }), control];
}

// A colour per label: fixed for spaCy's usual labels, else derived from the label's text. All
// light enough for dark text at WCAG AA contrast.
const LABEL_COLOURS = {
  PERSON: "#c7d2fe", PER: "#c7d2fe", ORG: "#a7f3d0", GPE: "#fde68a", LOC: "#fed7aa", NORP: "#fbcfe8",
  DATE: "#bae6fd", TIME: "#bae6fd", MONEY: "#d9f99d", CARDINAL: "#e9d5ff", ORDINAL: "#e9d5ff",
  PRODUCT: "#fecaca", EVENT: "#99f6e4", WORK_OF_ART: "#f5d0fe", LAW: "#e7e5e4", LANGUAGE: "#ccfbf1",
  FAC: "#fef08a", PERCENT: "#d9f99d", QUANTITY: "#d9f99d", MISC: "#e5e7eb",
};

export function labelColour(label, lightness = 82) {
  if (lightness === 82 && LABEL_COLOURS[label]) return LABEL_COLOURS[label];
  let hash = 0;
  for (const ch of String(label)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360} 85% ${lightness}%)`;
}

// Loads a classic script (a vendored library) once; same-origin, so the CSP allows it.
const scripts = new Map();
export function loadScript(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const el = h("script", { src });
      el.addEventListener("load", resolve);
      el.addEventListener("error", () => reject(new Error(`could not load ${src}`)));
      document.head.append(el);
    }));
  }
  return scripts.get(src);
}

// Python offsets count code points; JavaScript strings count UTF-16 units. Slicing an array of
// code points keeps the two in step for text with emoji and other astral characters.
export function slicer(text) {
  const points = Array.from(text);
  return (start, end) => points.slice(start, end).join("");
}

export function fmt(value, digits = 3) {
  return typeof value === "number" ? value.toFixed(digits) : String(value);
}
