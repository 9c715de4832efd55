// The live strip: polls GET /v1/metrics, and shows requests/s, mean batch size, queue depth and
// p50/p99 latency over the last polling window, with a small uPlot chart of the recent history.

import { loadScript } from "./dom.js";

const EVERY_MS = 2000;
const HISTORY = 90;

// The q-quantile of a histogram's observations between two reads, interpolated linearly inside the
// bucket it falls in, as Prometheus' histogram_quantile does (no small library does just this).
export function quantile(q, le, cumulative, count) {
  if (!count) return null;
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < le.length; i += 1) {
    if (cumulative[i] >= rank) {
      const inBucket = cumulative[i] - below;
      return inBucket ? lower + ((le[i] - lower) * (rank - below)) / inBucket : le[i];
    }
    lower = le[i];
    below = cumulative[i];
  }
  return le.length ? le[le.length - 1] : null; // in the +Inf bucket: the largest finite bound
}

// The sum over models of one histogram, as the difference between two reads.
function delta(now, before, key) {
  let le = [];
  let cumulative = [];
  let count = 0;
  let sum = 0;
  for (const [name, model] of Object.entries(now.models)) {
    const hist = model[key];
    let old = before && before.models[name] ? before.models[name][key] : null;
    if (!hist.le.length) continue; // nothing observed yet for this model
    if (old && old.cumulative.length !== hist.cumulative.length) old = null; // its first observation
    if (!le.length) {
      le = hist.le.slice();
      cumulative = new Array(le.length).fill(0);
    }
    hist.cumulative.forEach((c, i) => { cumulative[i] += c - (old ? old.cumulative[i] : 0); });
    count += hist.count - (old ? old.count : 0);
    sum += hist.sum - (old ? old.sum : 0);
  }
  return { le, cumulative, count, sum };
}

function requests(snapshot) {
  let total = 0;
  for (const model of Object.values(snapshot.models)) {
    for (const n of Object.values(model.requests)) total += n;
  }
  return total;
}

function ms(seconds) {
  if (seconds === null) return "–";
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(2)} s`;
}

export function summarize(now, before) {
  const seconds = before ? Math.max(now.time - before.time, 1e-3) : null;
  const latency = delta(now, before, "latency_seconds");
  const batches = delta(now, before, "batch_size");
  let queue = 0;
  for (const model of Object.values(now.models)) queue += model.queue_depth;
  return {
    rps: seconds ? (requests(now) - requests(before)) / seconds : null,
    batch: batches.count ? batches.sum / batches.count : null,
    queue,
    p50: quantile(0.5, latency.le, latency.cumulative, latency.count),
    p99: quantile(0.99, latency.le, latency.cumulative, latency.count),
  };
}

export function startMetrics(strip) {
  const cells = Object.fromEntries([...strip.querySelectorAll("[data-metric]")].map((el) => [el.dataset.metric, el]));
  const history = [[], [], []];
  let before = null;
  let plot = null;
  const chart = strip.querySelector(".chart");

  async function drawChart() {
    if (plot || !chart || chart.offsetWidth === 0) return;
    await loadScript("/playground/vendor/uplot/uPlot.iife.min.js");
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = "/playground/vendor/uplot/uPlot.min.css";
    document.head.append(css);
    plot = new window.uPlot({
      width: chart.offsetWidth, height: 64, legend: { show: false }, cursor: { show: false },
      axes: [{ show: false }, { show: false }, { show: false, scale: "ms" }],
      scales: { x: { time: true }, ms: { auto: true } },
      series: [{}, { label: "requests/s", stroke: "#1d4ed8", width: 2, points: { show: false } },
        { label: "p99 ms", stroke: "#b45309", width: 1.5, scale: "ms", points: { show: false } }],
    }, history, chart);
  }

  async function poll() {
    if (document.visibilityState !== "hidden") {
      try {
        const response = await fetch("/v1/metrics");
        if (response.ok) {
          const now = await response.json();
          const figures = summarize(now, before);
          before = now;
          cells.rps.textContent = figures.rps === null ? "–" : figures.rps.toFixed(1);
          cells.batch.textContent = figures.batch === null ? "–" : figures.batch.toFixed(1);
          cells.queue.textContent = String(figures.queue);
          cells.p50.textContent = ms(figures.p50);
          cells.p99.textContent = ms(figures.p99);
          strip.dataset.updated = String(now.time);
          history[0].push(now.time);
          history[1].push(figures.rps ?? 0);
          history[2].push(figures.p99 === null ? null : figures.p99 * 1000);
          if (history[0].length > HISTORY) history.forEach((series) => series.shift());
          await drawChart();
          if (plot) plot.setData(history);
        }
      } catch {
        // The server is gone or restarting: keep the last figures, try again at the next tick.
      }
    }
    setTimeout(poll, EVERY_MS);
  }
  poll();
}
