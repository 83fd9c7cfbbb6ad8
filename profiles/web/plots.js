// Kerf live page: the plots. Every few seconds it reads the node's
// history (/v1/history/…), the rules (/v1/rules), the jobs (jobs.js) and
// the re-slice events, and draws them with uPlot: per load-signal series
// its recent values with each rule's and job's thresholds, the re-slices
// and the starts and ends of job instances that ran for its source; per
// GPU the GPU time and memory of each slice, stacked, and the layout over
// time as bands; per tenant its rates. Every plot's element carries
// data-points (and signal plots data-thresholds, data-job-thresholds,
// data-markers and data-job-markers) for tests and for a reader.
"use strict";

const plotEvery = 2000; // ms between refreshes
const signalsPerPage = 12;
const plotsByKey = new Map(); // key → {u, sig}
let signalOffset = 0;
let signalQuery = "";
let rulesCache = []; // rules with their trigger read from the document
let resliceEvents = [];

// globRegExp turns a rule's glob (path.Match: * and ? stop at "/") into a
// RegExp.
function globRegExp(glob) {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const j = glob.indexOf("]", i + 1);
      if (j < 0) { re += "\\["; continue; }
      re += "[" + glob.slice(i + 1, j).replace(/^\^/, "^").replace(/\\/g, "\\\\") + "]";
      i = j;
    } else if (c === "\\" && i + 1 < glob.length) re += "\\" + glob[++i];
    else re += c.replace(/[.+^${}()|\]\\/]/g, "\\$&");
  }
  return new RegExp("^" + re + "$");
}

// rulesReading is the rules (in force) whose trigger reads source/metric.
function rulesReading(source, metric) {
  return rulesCache.filter((r) => r.source.test(source) && r.metric.test(metric));
}

function readRules(list) {
  rulesCache = [];
  for (const r of list) {
    const tr = (r.rule && r.rule.trigger) || {};
    if (r.state !== "active" || tr.threshold === undefined) continue;
    rulesCache.push({
      name: r.name, threshold: tr.threshold,
      activation: tr.activationThreshold === undefined ? tr.threshold : tr.activationThreshold,
      source: globRegExp(tr.source || "*"), metric: globRegExp(tr.metric || "*"),
    });
  }
}

function renderRules(list) {
  const tb = $("rules").tBodies[0];
  tb.replaceChildren();
  for (const r of list) {
    const phase = r.state === "active" ? (r.phase || "armed") : r.state;
    const when = r.lastDecisionTime ? new Date(r.lastDecisionTime).toLocaleTimeString() + " " : "";
    tb.append(el("tr", { "data-rule": r.name, "data-phase": phase },
      el("td", {}, el("b", {}, r.name), r.readOnly ? el("span", { class: "muted" }, " (config file)") : ""),
      el("td", {}, el("span", { class: "phase phase-" + phase.replace(/ /g, "-") }, phase)),
      el("td", {}, r.state === "active" ? (r.why || "") : (r.reason || "")),
      el("td", {}, r.lastDecision ? when + r.lastDecision : el("span", { class: "muted" }, "none yet"))));
  }
  if (!list.length) tb.append(el("tr", {}, el("td", { colspan: "4", class: "muted" }, "no rules")));
}

// align puts several series of {t, v} on one time axis (uPlot's data
// shape); a series without a value at a time gets null.
function align(series) {
  const ts = new Set();
  for (const p of series) for (const t of p.t) ts.add(t);
  const x = [...ts].sort((a, b) => a - b);
  const at = new Map(x.map((t, i) => [t, i]));
  const ys = series.map((p) => {
    const y = new Array(x.length).fill(null);
    p.t.forEach((t, i) => { y[at.get(t)] = p.v[i]; });
    return y;
  });
  return [x, ...ys];
}

// stack turns aligned series into running sums, top first, so that each
// fill covers the ones beneath.
function stack(data) {
  const [x, ...ys] = data;
  const sums = [];
  let acc = new Array(x.length).fill(0);
  for (const y of ys) {
    acc = acc.map((a, i) => a + (y[i] || 0));
    sums.push(acc);
  }
  return [x, ...sums.reverse()];
}

function plotWidth(box) {
  return Math.max(260, Math.min(560, (box.clientWidth || 1100) / 2 - 24));
}

// plot draws data into the element box under key, reusing the uPlot when
// the series are the same.
function plot(box, key, title, series, data, extra) {
  const sig = JSON.stringify(series.map((s) => s.label)) + (extra && extra.sig || "");
  let p = plotsByKey.get(key);
  if (p && (p.sig !== sig || !p.el.isConnected)) {
    p.u.destroy();
    p.el.remove();
    p = null;
  }
  if (!p) {
    const elx = el("div", { class: "plot" }, el("div", { class: "plot-title" }, title));
    box.append(elx);
    const opts = Object.assign({
      width: plotWidth(box.parentElement || box), height: 160,
      series: [{}, ...series],
      axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => (extra && extra.fmt ? extra.fmt(v) : fmtNum(v))) }],
      scales: { x: { time: true } },
      legend: { show: true, live: false },
      cursor: { show: false },
    }, extra && extra.opts || {});
    p = { el: elx, u: new uPlot(opts, data, elx), sig };
    plotsByKey.set(key, p);
  } else {
    p.u.setData(data);
  }
  p.el.querySelector(".plot-title").textContent = title;
  p.el.dataset.points = String(data[0].length);
  return p;
}

function fmtNum(v) {
  if (v === null || v === undefined) return "";
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  if (a >= 10 || a === 0) return v.toFixed(0);
  return v.toPrecision(2);
}

// overlay draws a signal plot's thresholds (dashed, one per rule or job),
// re-slice markers (solid vertical lines, labelled at the top) and job
// markers (dotted vertical lines, labelled at the bottom: an instance's
// start, then its end with the exit code) over the plot.
function overlay(lines, marks, jobs) {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.lineWidth = 1.5 * devicePixelRatio;
        for (const l of lines) {
          const y = u.valToPos(l.value, "y", true);
          if (!isFinite(y)) continue;
          ctx.strokeStyle = l.job ? jobColor.threshold : "#b45309";
          ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = ctx.strokeStyle;
          ctx.font = `${11 * devicePixelRatio}px system-ui`;
          // A rule's label on the left, a job's on the right: a rule and a
          // job often share a threshold.
          ctx.textAlign = l.job ? "right" : "left";
          ctx.fillText(l.label, l.job ? u.bbox.left + u.bbox.width - 4 : u.bbox.left + 4, y - 3 * devicePixelRatio);
          ctx.textAlign = "left";
        }
        for (const m of marks) {
          const x = u.valToPos(m.t, "x", true);
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = m.ours ? "#dc2626" : "#9ca3af";
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillStyle = ctx.strokeStyle;
          ctx.font = `${10 * devicePixelRatio}px system-ui`;
          ctx.fillText(m.label, x + 3, u.bbox.top + 11 * devicePixelRatio);
        }
        jobs.forEach((m, i) => {
          const x = u.valToPos(m.t, "x", true);
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
          ctx.strokeStyle = jobColor[m.kind];
          ctx.setLineDash([2 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = ctx.strokeStyle;
          ctx.font = `${10 * devicePixelRatio}px system-ui`;
          // Labels of marks close together step up so they do not overlap.
          ctx.fillText(m.label, x + 3, u.bbox.top + u.bbox.height - (3 + 11 * (i % 3)) * devicePixelRatio);
        });
        ctx.restore();
      }],
    },
  };
}

const jobColor = { threshold: "#0f766e", start: "#059669", exit: "#7c3aed" };

async function refreshSignals(win) {
  const q = encodeURIComponent(signalQuery);
  const r = await api(`/v1/history/signals?q=${q}&offset=${signalOffset}&limit=${signalsPerPage}`);
  const h = await r.json();
  const box = $("signals");
  const shown = new Set();
  const now = Date.now() / 1000;
  for (const s of h.series) {
    const name = `${s.source} ${s.metric}`;
    const key = "signal " + name;
    shown.add(key);
    const rules = rulesReading(s.source, s.metric);
    const lines = [];
    for (const rl of rules) {
      lines.push({ value: rl.threshold, label: `${rl.name} ≥ ${rl.threshold}` });
      if (rl.activation !== rl.threshold) lines.push({ value: rl.activation, label: `${rl.name} < ${rl.activation}` });
    }
    const jobs = jobsReading(s.source, s.metric);
    for (const j of jobs) {
      lines.push({ value: j.threshold, label: `job ${j.name} ≥ ${j.threshold}`, job: true });
      if (j.activation !== j.threshold) lines.push({ value: j.activation, label: `job ${j.name} < ${j.activation}`, job: true });
    }
    const names = new Set(rules.map((rl) => rl.name));
    const marks = resliceEvents.filter((e) => Date.parse(e.time) / 1000 >= now - win).map((e) => ({
      t: Date.parse(e.time) / 1000, ours: names.has(e.rule), label: e.rule ? "re-slice: " + e.rule : "re-slice",
    }));
    const jmarks = jobMarks(jobs, s.source, now - win);
    const data = [s.points.t.slice(), s.points.v.slice()];
    // Keep the thresholds in view, and the whole window on the time axis.
    const vals = data[1].concat(lines.map((l) => l.value));
    const lo = Math.min(0, ...vals), hi = Math.max(1, ...vals) * 1.1;
    const p = plot(box, key, name, [{ label: s.metric, stroke: "#4a78d0", width: 1.5, points: { show: data[0].length < 60 } }], data, {
      sig: JSON.stringify(lines) + JSON.stringify(marks) + JSON.stringify(jmarks),
      opts: Object.assign({ scales: { x: { time: true, range: () => [now - win, now] }, y: { range: () => [lo, hi] } } }, overlay(lines, marks, jmarks)),
    });
    p.el.classList.add("signal");
    p.el.dataset.series = name;
    p.el.dataset.thresholds = lines.filter((l) => !l.job).map((l) => l.value).join(",");
    p.el.dataset.jobThresholds = lines.filter((l) => l.job).map((l) => l.value).join(",");
    p.el.dataset.markers = String(marks.filter((m) => m.ours).length);
    p.el.dataset.jobMarkers = String(jmarks.length);
    p.el.dataset.jobStarts = String(jmarks.filter((m) => m.kind === "start").length);
    p.el.dataset.jobExits = String(jmarks.filter((m) => m.kind === "exit").length);
  }
  for (const [key, p] of plotsByKey) {
    if (key.startsWith("signal ") && !shown.has(key)) {
      p.u.destroy();
      p.el.remove();
      plotsByKey.delete(key);
    }
  }
  const last = Math.min(h.offset + h.series.length, h.total);
  $("signal-page").textContent = h.total ? `${h.offset + 1}–${last} of ${h.total} series` : "no series";
  $("signal-prev").disabled = h.offset === 0;
  $("signal-next").disabled = last >= h.total;
}

async function refreshGPUs() {
  const r = await api("/v1/history/gpus");
  const h = await r.json();
  const now = Date.now() / 1000;
  for (const g of h.gpus) {
    const box = $("gpu-plots-" + g.gpu);
    if (!box) continue;
    const order = {};
    g.slices.forEach((s, i) => { order[s.id] = i; });
    sliceOrder[g.gpu] = order;
    const label = (s) => `${s.id}${s.tenant ? " " + s.tenant : ""}`;
    const series = (fill) => g.slices.map((s, i) => ({
      label: label(s), stroke: sliceColor(i), fill: fill ? sliceColor(i) + "cc" : undefined, width: 1,
    })).reverse();
    plot(box, "gpu-time " + g.gpu, `GPU ${g.gpu}: GPU time per slice (s per s, stacked)`, series(true),
      stack(align(g.slices.map((s) => s.gpuTime))), {}).el.dataset.plot = "gpu-time-" + g.gpu;
    plot(box, "gpu-mem " + g.gpu, `GPU ${g.gpu}: memory in use per slice (stacked)`, series(true),
      stack(align(g.slices.map((s) => s.memoryUsedBytes))), { fmt: fmtBytes }).el.dataset.plot = "gpu-mem-" + g.gpu;
    // The layout over time: each slice's memory limit while it existed,
    // stacked and stepped, so a re-slice is a change of bands.
    const xs = g.layouts.map((l) => Math.max(Date.parse(l.time) / 1000, now - h.windowSeconds));
    xs.push(now);
    const ys = g.slices.map((s) => xs.map((_, i) => {
      const l = g.layouts[Math.min(i, g.layouts.length - 1)];
      const b = l.slices.find((b) => b.id === s.id);
      return b ? b.memoryLimitBytes : 0;
    }));
    const p = plot(box, "gpu-layout " + g.gpu, `GPU ${g.gpu}: slice layout over time (memory limits)`, series(true),
      stack([xs, ...ys]), { fmt: fmtBytes, opts: { series: [{}, ...series(true).map((s) => Object.assign(s, { paths: uPlot.paths.stepped({ align: 1 }) }))] } });
    p.el.dataset.plot = "gpu-layout-" + g.gpu;
    p.el.dataset.layouts = String(g.layouts.length);
  }
}

async function refreshTenants() {
  const r = await api("/v1/history/tenants");
  const h = await r.json();
  const box = $("tenant-plots");
  for (const t of h.tenants) {
    const p = plot(box, "tenant " + t.name, `tenant ${t.name}: calls, errors (per s)`, [
      { label: "calls/s", stroke: "#4a78d0", width: 1.5 },
      { label: "errors/s", stroke: "#dc2626", width: 1.5 },
    ], align([t.calls, t.errors]), {});
    p.el.dataset.plot = "tenant-calls-" + t.name;
    plot(box, "tenant-io " + t.name, `tenant ${t.name}: bytes per s, GPU time (s per s)`, [
      { label: "bytes/s", stroke: "#3fa66b", width: 1.5, scale: "bytes" },
      { label: "GPU s/s", stroke: "#8064a2", width: 1.5, scale: "gpu" },
    ], align([t.bytes, t.gpuTime]), {
      opts: { scales: { x: { time: true }, bytes: {}, gpu: { range: [0, 1] } },
        axes: [{}, { scale: "bytes", size: 60, values: (u, v) => v.map(fmtBytes) }, { scale: "gpu", side: 1, size: 40 }] },
    }).el.dataset.plot = "tenant-io-" + t.name;
  }
}

async function refreshPlots() {
  const [rules, events] = await Promise.all([api("/v1/rules").then((r) => r.json()), api("/v1/events?kind=reslice&limit=200").then((r) => r.json()),
    refreshJobs()]);
  readRules(rules);
  renderRules(rules);
  resliceEvents = events;
  const g = await api("/v1/history/gpus").then((r) => r.json()).catch(() => null);
  const win = g ? g.windowSeconds : 900;
  $("window").textContent = g ? `history: last ${Math.round(win / 60)} min, every ${g.stepSeconds} s` : "";
  await refreshSignals(win);
  await refreshGPUs();
  await refreshTenants();
  document.body.dataset.plotted = String(Date.now());
}

let plotsStarted = false;

function startPlots() {
  if (plotsStarted) return;
  plotsStarted = true;
  let timer = null;
  $("signal-q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { signalQuery = $("signal-q").value.trim(); signalOffset = 0; refreshPlots().catch(() => {}); }, 250);
  });
  $("signal-prev").addEventListener("click", () => { signalOffset = Math.max(0, signalOffset - signalsPerPage); refreshPlots().catch(() => {}); });
  $("signal-next").addEventListener("click", () => { signalOffset += signalsPerPage; refreshPlots().catch(() => {}); });
  const loop = async () => {
    try { await refreshPlots(); } catch (e) { if (e.message === "auth") return; }
    setTimeout(loop, plotEvery);
  };
  loop();
}
