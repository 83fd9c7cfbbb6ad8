// Kerf live page: triggered jobs. On each refresh of the plots it reads
// /v1/jobs and each job's /v1/jobs/{name}/runs, fills the Jobs panel (the
// state and why, the running instances, the last runs) and keeps what the
// signal plots draw for jobs: each job's thresholds, matched to a series
// by its trigger's source and metric globs as a rule's are, and its
// instances' starts and ends on the series of the source each ran for.
"use strict";

const runsShown = 5; // last runs listed per job
let jobsCache = []; // {name, threshold, activation, source, metric: RegExp, marks: [{t, kind, source, label}]}

// jobsReading is the jobs whose trigger reads source/metric.
function jobsReading(source, metric) {
  return jobsCache.filter((j) => j.source.test(source) && j.metric.test(metric));
}

// jobMarks is the starts and ends of the instances of jobs that ran for
// source, from t0 on.
function jobMarks(jobs, source, t0) {
  const out = [];
  for (const j of jobs) for (const m of j.marks) if (m.source === source && m.t >= t0) out.push(m);
  return out;
}

function readJobs(list, runs) {
  jobsCache = [];
  list.forEach((j, i) => {
    const tr = (j.job && j.job.trigger) || {};
    if (tr.threshold === undefined) return;
    const marks = [];
    const r = runs[i];
    const t = (s) => Date.parse(s) / 1000;
    for (const inst of (r && r.running) || []) {
      if (inst.source) marks.push({ t: t(inst.started), kind: "start", source: inst.source, label: "▶ " + j.name });
    }
    for (const run of (r && r.runs) || []) {
      if (!run.source) continue;
      marks.push({ t: t(run.started), kind: "start", source: run.source, label: "▶ " + j.name });
      marks.push({ t: t(run.ended), kind: "exit", source: run.source, label: `■ ${j.name} ${run.exitCode}` });
    }
    jobsCache.push({
      name: j.name, threshold: tr.threshold,
      activation: tr.activationThreshold === undefined ? tr.threshold : tr.activationThreshold,
      source: globRegExp(tr.source || "*"), metric: globRegExp(tr.metric || "*"), marks,
    });
  });
}

// fmtSeconds says a duration in seconds as a person reads it.
function fmtSeconds(s) {
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

const clock = (s) => new Date(s).toLocaleTimeString();

function renderJobs(list, runs) {
  const tb = $("jobs").tBodies[0];
  tb.replaceChildren();
  list.forEach((j, i) => {
    const r = runs[i] || { state: j.state, reason: j.reason, running: [], runs: [] };
    const state = r.state || j.state || "pending";
    const running = el("ul", { class: "instances" });
    for (const inst of r.running || []) {
      running.append(el("li", { "data-instance": inst.id, "data-source": inst.source || "" },
        el("b", {}, inst.source || "(concurrency.min)"), ` since ${clock(inst.started)} · ${fmtBytes(inst.memoryBytes)}`,
        inst.stopping ? el("span", { class: "muted" }, " · stopping") : ""));
    }
    if (!running.childElementCount) running.append(el("li", { class: "muted" }, "none"));
    const last = el("ul", { class: "runs" });
    for (const run of (r.runs || []).slice(-runsShown).reverse()) {
      const took = (Date.parse(run.ended) - Date.parse(run.started)) / 1000;
      last.append(el("li", { "data-outcome": run.outcome, "data-exit-code": String(run.exitCode), title: run.instance },
        `${clock(run.ended)} `, el("span", { class: "outcome outcome-" + run.outcome }, run.outcome),
        `, exit ${run.exitCode} after ${fmtSeconds(took)}`, run.source ? ` (${run.source})` : "",
        run.reason ? el("span", { class: "muted" }, ": " + run.reason) : ""));
    }
    if (!last.childElementCount) last.append(el("li", { class: "muted" }, "none yet"));
    tb.append(el("tr", {
      "data-job": j.name, "data-state": state,
      "data-running": String((r.running || []).length), "data-runs": String((r.runs || []).length),
    },
    el("td", {}, el("b", {}, j.name)),
    el("td", {}, el("span", { class: "phase phase-" + state }, state)),
    el("td", {}, r.reason || j.reason || "", r.failures ? el("span", { class: "muted" }, ` (${r.failures} failure(s) in a row)`) : ""),
    el("td", {}, running), el("td", {}, last)));
  });
  if (!list.length) tb.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "no jobs")));
}

// refreshJobs reads the jobs and their runs; a job deleted between the
// two reads shows with no runs.
async function refreshJobs() {
  const list = await api("/v1/jobs").then((r) => r.json());
  const runs = await Promise.all(list.map((j) => api(`/v1/jobs/${encodeURIComponent(j.name)}/runs`).then((r) => r.json()).catch((e) => {
    if (e.message === "auth") throw e;
    return null;
  })));
  readJobs(list, runs);
  renderJobs(list, runs);
}
