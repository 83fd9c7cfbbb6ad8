// Kerf live page: no build step. The admin token comes from the URL
// fragment (#token=…, removed at once) or the form, and stays in this
// tab's sessionStorage. The page reads /v1/state, then follows /v1/stream
// (server-sent events read with fetch, so the token goes in a header);
// if the stream fails it polls /v1/state. The plots (uPlot, served from
// vendor/uplot) read /v1/history, /v1/rules and the re-slice events every
// few seconds.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("kerf-admin-token") || "";

(function takeTokenFromHash() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem("kerf-admin-token", token);
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

function fmtBytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (n >= 10 || i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
}
const pct = (x) => Math.round((x || 0) * 100) + "%";

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function setStatus(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + (cls || "");
}

// sliceColor is a slice's colour, the same in the bar, the legend and
// the plots: by its place in its GPU's history.
const palette = ["#4a78d0", "#e0803a", "#3fa66b", "#c0504d", "#8064a2", "#2aa3b8", "#b8a22a", "#d0609a", "#6b8e23", "#7f7f7f"];
const sliceColor = (i) => palette[i % palette.length];
const sliceOrder = {}; // gpu → slice id → index, from the history

function colorOf(gpu, id, fallback) {
  const o = sliceOrder[gpu] || {};
  return sliceColor(id in o ? o[id] : fallback);
}

function render(st) {
  const gpus = $("gpus");
  for (const g of st.gpus) {
    const slices = st.slices.filter((s) => s.gpu === g.index);
    const bar = el("div", { class: "bar" });
    const legend = el("ol", { class: "slice-legend" });
    slices.forEach((s, i) => {
      const width = g.memoryBytes ? (100 * s.memoryLimitBytes) / g.memoryBytes : 0;
      const used = s.memoryLimitBytes ? (100 * s.memoryUsedBytes) / s.memoryLimitBytes : 0;
      const who = s.tenant || "free";
      const text = `${fmtBytes(s.memoryUsedBytes)} / ${fmtBytes(s.memoryLimitBytes)}`;
      const share = `share ${pct(s.shareAchieved)} / ${pct(s.shareTarget)}`;
      const color = colorOf(g.index, s.id, i);
      bar.append(el("div", {
        class: "slice" + (s.pending ? " pending" : "") + (s.tenant ? "" : " free"), style: `width:${width}%`,
        title: `#${i + 1} ${who}: ${text}, ${share}`,
        "data-tenant": s.tenant, "data-gpu": String(g.index), "data-slice": s.id || "",
        "data-memory-used": String(s.memoryUsedBytes), "data-memory-limit": String(s.memoryLimitBytes),
      },
      el("div", { class: "used", style: `width:${Math.min(used, 100)}%;background:${color}` }),
      el("div", { class: "label" }, `#${i + 1}`)));
      // The legend holds the whole label: it wraps, so nothing is cut off
      // however many slices the GPU has.
      legend.append(el("li", { "data-tenant": s.tenant },
        el("span", { class: "swatch", style: `background:${color}` }), `#${i + 1} `,
        el("b", {}, who), " ", el("span", { class: "mem" }, text), " · ",
        el("span", { class: "share" }, share), s.pending ? " · re-slicing" : ""));
    });
    let box = $("gpu-" + g.index);
    if (!box) {
      box = el("div", { class: "gpu", id: "gpu-" + g.index }, el("div", { class: "gpu-title" }), el("div", { class: "gpu-now" }),
        el("div", { class: "plots gpu-plots", id: "gpu-plots-" + g.index }));
      gpus.append(box);
    }
    box.querySelector(".gpu-title").textContent = `GPU ${g.index}: ${g.name} — ${fmtBytes(g.memoryBytes)}, ${slices.length} slice(s)`;
    box.querySelector(".gpu-now").replaceChildren(bar, legend);
  }
  const tb = $("tenants").tBodies[0];
  tb.replaceChildren();
  for (const t of st.tenants) {
    tb.append(el("tr", { "data-tenant": t.name },
      el("td", {}, t.name), el("td", { class: "num" }, String(t.sessions || 0)),
      el("td", { class: "num" }, fmtBytes(t.memoryUsedBytes) + (t.memoryLimitBytes ? " / " + fmtBytes(t.memoryLimitBytes) : "")),
      el("td", { class: "num" }, String(t.calls || 0)), el("td", { class: "num" }, String(t.errors || 0))));
  }
  const ev = $("events");
  ev.replaceChildren();
  for (const e of st.events.slice().reverse()) {
    const when = new Date(e.time).toLocaleTimeString();
    ev.append(el("li", { "data-kind": e.kind }, `${when} ${e.summary || eventWords(e)}`));
  }
  document.body.dataset.rendered = String(Date.now());
}

// eventWords says an event recorded without a summary.
function eventWords(e) {
  let text = `${e.actor || e.kind}: ${e.action}`;
  if (e.subject) text += " " + e.subject;
  if (e.status) text += " → " + e.status;
  if (e.detail) text += " (" + e.detail + ")";
  return text;
}

function needLogin(msg) {
  sessionStorage.removeItem("kerf-admin-token");
  token = "";
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = msg || "";
  setStatus("signed out", "down");
}

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ headers: { Authorization: "Bearer " + token } }, opts || {}));
  if (r.status === 401 || r.status === 403) {
    const p = await r.json().catch(() => ({}));
    needLogin(p.detail || "the token was refused");
    throw new Error("auth");
  }
  if (!r.ok) throw new Error("HTTP " + r.status);
  return r;
}

async function stream() {
  const r = await api("/v1/stream");
  setStatus("live", "live");
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const msg = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message", data = "";
      for (const line of msg.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (event === "state" && data) render(JSON.parse(data));
    }
  }
}

async function poll() {
  const r = await api("/v1/state");
  render(await r.json());
}

async function run() {
  if (!token) return needLogin("");
  $("login").hidden = true;
  $("main").hidden = false;
  try {
    await poll();
  } catch (e) {
    if (e.message === "auth") return;
    setStatus("cannot reach kerfd: " + e.message, "down");
  }
  startPlots();
  startPool();
  for (;;) {
    try {
      await stream();
    } catch (e) {
      if (e.message === "auth") return;
    }
    // The stream ended or is not available: poll until it comes back.
    setStatus("reconnecting…", "down");
    await new Promise((res) => setTimeout(res, 2000));
    try { await poll(); } catch (e) { if (e.message === "auth") return; }
  }
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("kerf-admin-token", token);
  run();
});

run();
