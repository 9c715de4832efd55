// Any other task (tensor, or one this page has no view for): a JSON editor for the predict body,
// prefilled from the model's signature where it states one, and the raw JSON answer.

import { Panel, runOnCtrlEnter } from "../lib/api.js";
import { field, h } from "../lib/dom.js";

// A zero-filled example of a tensor spec ({shape, dtype}); unknown dimensions (null, -1) become 1.
// A signature's shape starts with the batch dimension, and an input is one example without it.
function example(spec) {
  const shape = (spec.shape || []).slice(1).map((d) => (typeof d === "number" && d > 0 ? d : 1));
  const zero = /str|string|bytes/.test(String(spec.dtype || "")) ? "" : 0;
  const build = (dims) => (dims.length ? Array.from({ length: Math.min(dims[0], 64) }, () => build(dims.slice(1))) : zero);
  return build(shape);
}

// The first input a signature suggests: {"name": tensor, ...} for named tensor inputs.
export function prefill(detail) {
  const signature = detail.signature || (detail.model && detail.model.card && detail.model.card.signature);
  const inputs = signature && signature.inputs;
  let value = "";
  if (Array.isArray(inputs)) {
    value = Object.fromEntries(inputs.map((spec, i) => [spec.name || `input_${i}`, example(spec)]));
  } else if (inputs && typeof inputs === "object") {
    value = Object.fromEntries(Object.entries(inputs).map(([name, spec]) => [name, example(spec)]));
  }
  return { inputs: value, options: detail.defaults || {} };
}

export function json(root, model, detail) {
  const panel = new Panel(root, model, detail);
  const editor = h("textarea", { class: "code", rows: 14, spellcheck: "false" });
  editor.value = JSON.stringify(prefill(detail), null, 2);
  panel.inputs.append(...field("Request body (JSON: inputs, options)", editor),
    h("p", { class: "hint", text: "The options this model takes are in GET /v1/models/" + model.name + "; Ctrl+Enter runs." }));
  runOnCtrlEnter(panel, editor);
  panel.onRun(async () => {
    let body;
    try {
      body = JSON.parse(editor.value);
    } catch (err) {
      panel.showError({ code: "JSON", message: `the body is not valid JSON: ${err.message}` });
      return;
    }
    await panel.predict(body);
    root.querySelector("details.raw").open = true;
  });
  return panel;
}
