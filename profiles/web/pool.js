// Kerf live page: the pool. Every few seconds it reads /v1/pool and
// fills the Pool panel: each member, up or down, its GPUs and their
// slices as it last published them, and the ledger's leases. Outside a
// pool (409) the panel stays hidden.
"use strict";

const poolEvery = 2000; // ms between reads of /v1/pool

function renderPool(st) {
  $("pool-section").hidden = false;
  const live = st.live || [];
  $("pool-summary").textContent = `pool ${st.pool}, seen from ${st.node}: ${live.length} of ${st.members.length} members live, ` +
    (st.quorum ? "quorum" : "NO QUORUM") + (st.problem ? ` — ${st.problem}` : "");
  const members = $("pool-members");
  members.replaceChildren();
  for (const m of st.members) {
    const state = m.live ? "up" : "down";
    const gpus = el("ul", { class: "pool-gpus" });
    for (const g of m.gpus) {
      const slices = el("ol", { class: "slice-legend" });
      for (const s of g.slices) {
        slices.append(el("li", { "data-tenant": s.tenant || "" }, el("b", {}, s.tenant || "free"), ` ${fmtBytes(s.memoryBytes)} · share ${pct(s.share)}`));
      }
      gpus.append(el("li", { "data-gpu": String(g.index), "data-slices": String(g.slices.length) },
        `GPU ${g.index}: ${g.name} — ${fmtBytes(g.memoryBytes)}, ${g.slices.length} slice(s)`, slices));
    }
    let words = state;
    if (!m.live && m.lastSeen) words += `, last seen ${new Date(m.lastSeen).toLocaleTimeString()}`;
    if (m.self) words += ", this node";
    const title = `${m.name} (${words})`;
    members.append(el("div", { class: "pool-member " + state, "data-member": m.name, "data-state": state, "data-gpus": String(m.gpus.length) },
      el("div", { class: "gpu-title" }, title, el("span", { class: "muted" },
        ` · ${(m.heldGPUs || 0).toFixed(2)} GPU leased in ${m.leases} lease(s)` + (m.site ? ` · site ${m.site}` : ""))),
      gpus));
  }
  const tb = $("pool-leases").tBodies[0];
  tb.replaceChildren();
  for (const l of st.leases) {
    const until = l.expires ? "reserved until " + new Date(l.expires).toLocaleTimeString() : "granted";
    tb.append(el("tr", { "data-lease": l.id, "data-node": l.node },
      el("td", {}, l.id), el("td", {}, l.tenant), el("td", {}, l.node), el("td", {}, l.gpus.join(", ")),
      el("td", { class: "num" }, l.charge.toFixed(2)), el("td", {}, until)));
  }
  document.body.dataset.pooled = String(Date.now());
}

async function refreshPool() {
  const r = await fetch("/v1/pool", { headers: { Authorization: "Bearer " + token } });
  if (r.status === 409) { // not in a pool
    $("pool-section").hidden = true;
    return false;
  }
  if (!r.ok) throw new Error("HTTP " + r.status);
  renderPool(await r.json());
  return true;
}

let poolStarted = false;

function startPool() {
  if (poolStarted) return;
  poolStarted = true;
  const loop = async () => {
    try {
      if (!(await refreshPool())) return; // not in a pool: a node does not join one while it runs
    } catch (e) { /* kept until the next read */ }
    setTimeout(loop, poolEvery);
  };
  loop();
}
