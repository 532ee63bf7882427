// interp demo page: controls -> /api/run (Server-Sent Events) -> three streamed answers + chart.
"use strict";

const VARIANTS = ["original", "steered", "ablated"];
const $ = (id) => document.getElementById(id);
const clientId = Math.random().toString(36).slice(2) + Date.now().toString(36);
let config = null;
let source = null;        // the EventSource of the current run
let runSeq = 0;           // increments per run; stale events are ignored
let debounce = null;
let chartKey = null;      // request key (everything but alpha) of the chart's series
let points = new Map();   // alpha -> p(wrong) of the steered model
let refs = {};            // variant -> p(wrong) of original / ablated

function fmt(x, digits) { return x === null || x === undefined ? "n/a" : Number(x).toFixed(digits); }

function setState(state) { document.body.dataset.state = state; }

function showMessage(text, field) {
  document.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  const box = $("message");
  if (!text) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = text;
  const el = field && document.querySelector(`[data-field="${field}"]`);
  if (el) el.classList.add("invalid");
}

function currentPreset() {
  const id = $("preset").value;
  return config.presets.find((p) => p.item_id === id) || null;
}

function fillLayers() {
  const d = config.directions.find((x) => x.key === $("direction").value);
  const sel = $("layer");
  sel.innerHTML = "";
  if (!d) return;
  for (const layer of d.layers) sel.add(new Option(String(layer), String(layer)));
  sel.value = String(d.default_layer);
}

function applyPreset() {
  const p = currentPreset();
  if (!p) return;
  $("question").value = p.question;
  $("correct").value = p.correct;
  $("wrong").value = p.wrong;
  $("sad").checked = p.sad;
  $("belief").checked = p.belief;
}

function params() {
  const p = currentPreset();
  const q = new URLSearchParams({
    client: clientId, question: $("question").value, correct: $("correct").value,
    wrong: $("wrong").value, sad: $("sad").checked ? "1" : "0", belief: $("belief").checked ? "1" : "0",
    direction: $("direction").value, layer: $("layer").value, alpha: $("alpha").value,
  });
  if (p) q.set("item", p.item_id);
  return q;
}

function resetColumns() {
  for (const v of VARIANTS) {
    $("text-" + v).textContent = "";
    $("p-" + v).textContent = "…";
    setGrade(v, undefined);
    $("proj-" + v).textContent = "…";
    $("status-" + v).textContent = "waiting";
  }
}

// the offline grade of a finished answer (null: the answers are not both known)
function setGrade(v, grade) {
  const el = $("grade-" + v);
  el.textContent = grade === undefined ? "…" : grade === null ? "n/a" : grade.text;
  el.title = grade ? grade.reason : "";
  el.dataset.label = grade ? grade.label : "";
}

function run() {
  clearTimeout(debounce);
  if (source) source.close();   // the inputs changed: drop the old stream (the server cancels it too)
  const seq = ++runSeq;
  setState("running");
  resetColumns();
  const es = new EventSource("/api/run?" + params().toString());
  source = es;
  const live = (fn) => (msg) => { if (seq === runSeq) fn(JSON.parse(msg.data)); };
  es.addEventListener("meta", live((ev) => {
    showMessage("");
    $("prompt").textContent = ev.user;
    for (const v of VARIANTS) $("label-" + v).textContent = ev.labels[v];
    if (ev.key !== chartKey) { chartKey = ev.key; points = new Map(); refs = {}; }
  }));
  es.addEventListener("score", live((ev) => {
    $("p-" + ev.variant).textContent = fmt(ev.p_agree, 3);
    $("proj-" + ev.variant).textContent = fmt(ev.projection_rel, 3);
    $("status-" + ev.variant).textContent = "answering…";
    if (ev.p_agree !== null) {
      if (ev.variant === "steered") points.set(Number($("alpha").value), ev.p_agree);
      else refs[ev.variant] = ev.p_agree;
      drawChart();
    }
  }));
  es.addEventListener("tokens", live((ev) => {
    VARIANTS.forEach((v, i) => { if (ev.deltas[i]) $("text-" + v).textContent += ev.deltas[i]; });
  }));
  es.addEventListener("done", live((ev) => {
    VARIANTS.forEach((v, i) => {
      $("text-" + v).textContent = ev.texts[i];
      setGrade(v, ev.grades[i]);
      $("status-" + v).textContent = `${ev.n_tokens[i]} tokens, ${ev.seconds.toFixed(1)} s`;
    });
    document.body.dataset.doneAlpha = String(Number($("alpha").value));
    setState("done");
    es.close();
  }));
  es.addEventListener("invalid", live((ev) => {
    showMessage(ev.message, ev.field);
    for (const v of VARIANTS) { $("status-" + v).textContent = ""; $("p-" + v).textContent = "–"; $("grade-" + v).textContent = "–"; $("proj-" + v).textContent = "–"; }
    setState("invalid");
    es.close();
  }));
  es.addEventListener("error", (msg) => {
    if (seq !== runSeq) return;
    if (msg.data) showMessage("The run failed: " + JSON.parse(msg.data).message);
    else if (document.body.dataset.state === "running") showMessage("Lost the connection to the server.");
    setState("error");
    es.close();   // never let the browser reconnect and re-run by itself
  });
}

function schedule(delay) {
  clearTimeout(debounce);
  debounce = setTimeout(run, delay);
}

function themeColors() {
  const css = getComputedStyle(document.documentElement);
  const c = (name) => css.getPropertyValue(name).trim();
  return { text: c("--text"), panel: c("--panel"), border: c("--border"), steered: c("--steered"),
           ablated: c("--ablated"), original: c("--original") };
}

function drawChart() {
  if (typeof Plotly === "undefined") return;
  const c = themeColors();
  const xs = [...points.keys()].sort((a, b) => a - b);
  const lim = config ? config.alpha_limit : 1;
  const traces = [{ x: xs, y: xs.map((a) => points.get(a)), mode: "lines+markers", name: "steered",
                    line: { color: c.steered, width: 3 }, marker: { size: 11 } }];
  for (const [name, color, dash] of [["original", c.original, "dash"], ["ablated", c.ablated, "dot"]]) {
    if (refs[name] !== undefined) {
      traces.push({ x: [-lim, lim], y: [refs[name], refs[name]], mode: "lines", name,
                    line: { color, dash, width: 2 } });
    }
  }
  const layout = {
    margin: { l: 60, r: 20, t: 10, b: 50 }, paper_bgcolor: c.panel, plot_bgcolor: c.panel,
    font: { color: c.text, size: 16 }, legend: { orientation: "h", y: 1.12 },
    xaxis: { title: { text: "alpha" }, range: [-lim, lim], gridcolor: c.border, zerolinecolor: c.border },
    yaxis: { title: { text: "p(wrong answer)" }, range: [0, 1], gridcolor: c.border, zerolinecolor: c.border },
  };
  Plotly.react("chart", traces, layout, { displayModeBar: false, responsive: true });
}

function toggleTheme() {
  const root = document.documentElement;
  const next = root.dataset.theme === "dark" ? "light" : "dark";
  root.dataset.theme = next;
  $("theme").textContent = next === "dark" ? "light" : "dark";
  drawChart();
}

async function init() {
  const resp = await fetch("/api/config");
  config = await resp.json();
  $("model").textContent = config.model;
  $("max-tokens").textContent = String(config.max_new_tokens);
  const preset = $("preset");
  for (const p of config.presets) preset.add(new Option(p.title, p.item_id));
  preset.add(new Option("type your own question", ""));
  for (const d of config.directions) $("direction").add(new Option(`${d.key}`, d.key));
  const alpha = $("alpha");
  alpha.min = String(-config.alpha_limit);
  alpha.max = String(config.alpha_limit);
  alpha.value = "0";
  fillLayers();
  applyPreset();
  preset.addEventListener("change", () => { applyPreset(); run(); });
  $("question").addEventListener("input", () => { preset.value = ""; schedule(600); });
  for (const id of ["correct", "wrong"]) $(id).addEventListener("input", () => schedule(600));
  for (const id of ["sad", "belief", "layer"]) $(id).addEventListener("change", run);
  $("direction").addEventListener("change", () => { fillLayers(); run(); });
  alpha.addEventListener("input", () => { $("alpha-value").textContent = Number(alpha.value).toFixed(2); schedule(250); });
  alpha.addEventListener("change", run);
  $("theme").addEventListener("click", toggleTheme);
  drawChart();
  run();
}

init().catch((err) => { showMessage("Could not load the demo's settings: " + err); setState("error"); });
