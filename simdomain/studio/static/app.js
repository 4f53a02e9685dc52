// simdomain studio: the page. Every text from the server or the user goes into the page
// with textContent (never innerHTML), so nothing a scenario or a user types can run.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { scenario: null, source: "", levers: [], variants: {}, job: null, timer: null };
const PLOT = { responsive: true, displaylogo: false };
const LABELS = {
  new_adds: "new adds", new_members: "new members", deletions: "deletions",
  gmv_cny: "GMV (yuan)", spend_cny: "spend (yuan)", cost_per_member_cny: "cost per member (yuan)",
  deletion_rate: "deletion rate (mean of months)",
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    return { ok: false, data: { problems: [{ text: "the studio server is not reachable", path: "" }] } };
  }
  let data;
  try { data = await response.json(); } catch (err) { data = { problems: [{ text: `error ${response.status}`, path: "" }] }; }
  return { ok: response.ok, data };
}

function fmt(x, kpi) {
  if (x === null || x === undefined) return "–";
  if (kpi && kpi.includes("rate")) return (100 * x).toFixed(2) + "%";
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 1 ? 1 : 3;
  return x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

// ---- scenarios and levers ----------------------------------------------------------

async function loadScenarios(select, reopen = true) {
  const { data } = await api("/api/scenarios");
  const box = $("scenario");
  box.replaceChildren(...(data.scenarios || []).map((s) =>
    el("option", { value: s.id }, `${s.label}${s.kind === "file" ? "" : ` (${s.kind})`}`)));
  if (select) box.value = select;
  if (box.value && reopen) await openScenario(box.value);
}

async function openScenario(id) {
  const { ok, data } = await api(`/api/scenario?id=${encodeURIComponent(id)}`);
  if (!ok) return showProblems(data.problems);
  state.scenario = id;
  state.source = data.source;
  state.levers = data.levers;
  state.variants = {};
  $("scenario-source").textContent = data.source;
  buildForm();
  showVariants();
  showProblems(data.problems);
}

function buildForm() {
  const groups = new Map();
  for (const lever of state.levers) {
    if (!groups.has(lever.group)) groups.set(lever.group, []);
    groups.get(lever.group).push(lever);
  }
  const parts = [];
  for (const [group, items] of groups) {
    const details = el("details", { open: "" }, el("summary", {}, group));
    if (group === "Campaigns" || group === "Content mix") details.removeAttribute("open");
    for (const lever of items) details.append(leverInput(lever));
    parts.push(details);
  }
  $("levers").replaceChildren(...parts);
  onLeverChange();
}

function leverInput(lever) {
  lever.current = lever.value;
  lever.on = true;
  const row = el("div", { class: "row" });
  const box = el("div", { class: "lever", "data-lever": lever.path },
    el("label", {}, lever.label), row, el("div", { class: "problem", "data-for": lever.path }));
  const set = (value) => { lever.current = value; onLeverChange(); };
  if (lever.kind === "date") {
    row.append(el("input", { type: "date", value: lever.value, "data-path": lever.path,
      oninput: (e) => set(e.target.value) }));
    return box;
  }
  const number = el("input", { type: "number", value: lever.value, step: "any", "data-path": lever.path });
  const range = el("input", { type: "range", min: lever.min, max: Math.max(lever.max, lever.value),
    step: lever.step, value: lever.value, "data-path": lever.path });
  range.addEventListener("input", () => { number.value = range.value; set(range.value); });
  number.addEventListener("input", () => { range.value = number.value; set(number.value); });
  if (lever.switch) {
    const toggle = el("input", { type: "checkbox", checked: "", title: "channel on/off",
      "data-switch": lever.path });
    toggle.addEventListener("change", () => {
      lever.on = toggle.checked; range.disabled = number.disabled = !toggle.checked; onLeverChange();
    });
    row.append(toggle);
  }
  row.append(range, number);
  return box;
}

function overrides() {
  const out = [];
  for (const lever of state.levers) {
    const box = document.querySelector(`[data-lever="${CSS.escape(lever.path)}"]`);
    let value = lever.on === false ? "0" : String(lever.current).trim();
    const changed = lever.on === false || value !== String(lever.value);
    if (box) box.classList.toggle("changed", changed);
    if (changed) out.push(`${lever.path}=${value}`);
  }
  return out;
}

let validateTimer = null;
function onLeverChange() {
  const sets = overrides();
  $("changes").textContent = sets.length ? `${sets.length} change(s) from the file: ${sets.join("  ")}` : "as in the file";
  clearTimeout(validateTimer);
  validateTimer = setTimeout(async () => {
    const { data } = await api("/api/validate", { scenario: state.scenario, overrides: sets });
    showProblems(data.problems);
  }, 150);
}

function showProblems(problems, beside = true) {
  // beside: a problem whose field is in the form shows under that field; else in the list
  problems = problems || [];
  for (const node of document.querySelectorAll(".problem")) node.textContent = "";
  const general = [];
  for (const p of problems) {
    const target = beside && [...document.querySelectorAll(".problem")].find((node) =>
      p.path && (p.path === node.dataset.for || p.path.startsWith(node.dataset.for + ".")));
    if (target) {
      target.textContent = p.text;
      const group = target.closest("details");
      if (group) group.open = true;
    } else general.push(p.text);
  }
  $("problems").replaceChildren(...general.map((t) => el("li", {}, t)));
  for (const id of ["run", "plan", "keep"]) $(id).disabled = problems.length > 0 || state.job !== null;
  return problems.length;
}

// ---- jobs ------------------------------------------------------------------------

async function startJob(kind) {
  const body = { kind, scenario: state.scenario, overrides: overrides(),
    reps: $("reps").value, seed: $("seed").value };
  if (kind === "compare") body.variants = state.variants;
  if (kind === "plan") body.verify = $("verify").checked;
  const { ok, data } = await api("/api/jobs", body);
  if (!ok) return showProblems(data.problems);
  state.job = data.id;
  showCommand(data.command);
  setRunning(true);
  showProgress(data);
  state.timer = setInterval(pollJob, 200);
}

async function pollJob() {
  if (!state.job) return;
  const { ok, data } = await api(`/api/jobs/${state.job}`);
  if (!ok) { stopPolling(); return showProblems(data.problems); }
  showProgress(data);
  if (data.status === "running") return;
  stopPolling();
  if (data.status === "done") await openRun(data.id);
  else if (data.problems && data.problems.length) showProblems(data.problems);
  else if (data.error) showProblems([{ text: data.error, path: "" }]);
  loadPast();
}

function stopPolling() {
  clearInterval(state.timer);
  state.job = null;
  setRunning(false);
}

function setRunning(running) {
  $("cancel").disabled = !running;
  for (const id of ["run", "plan", "compare", "keep"]) $(id).disabled = running;
  if (!running) $("compare").disabled = Object.keys(state.variants).length === 0;
}

function showProgress(job) {
  const box = $("progress");
  box.hidden = false;
  box.dataset.status = job.status;
  box.dataset.progress = job.progress;
  box.classList.toggle("indeterminate", job.status === "running" && job.progress < 0);
  box.querySelector(".fill").style.width = `${Math.max(0, Math.round(100 * job.progress))}%`;
  const share = job.progress >= 0 ? ` ${Math.round(100 * job.progress)}%` : "";
  box.querySelector(".label").textContent = `${job.kind}: ${job.label}${job.status === "running" ? share : ""} (${job.seconds.toFixed(1)} s)`;
}

function showCommand(text) {
  $("command-line").hidden = !text;
  $("command").textContent = text || "";
}

async function cancelJob() {
  if (!state.job) return;
  const { data } = await api(`/api/jobs/${state.job}/cancel`, {});
  stopPolling();
  if (data && data.status) showProgress(data);
}

// ---- results -----------------------------------------------------------------------

async function openRun(id) {
  const { ok, data } = await api(`/api/runs/${encodeURIComponent(id)}`);
  if (!ok) return showProblems(data.problems);
  showCommand(data.meta.command);
  const title = `${data.meta.source || ""} · ${id}`;
  if (data.kind === "run") showRun(data, title);
  else if (data.kind === "compare") showCompare(data, title);
  else if (data.kind === "plan") showPlan(data, title);
}

const pending = [];  // figures drawn before Plotly.js has loaded (it loads async)
function plot(node, figure) {
  if (window.Plotly) window.Plotly.react(node, figure.data, figure.layout, PLOT);
  else pending.push([node, figure]);
}
$("plotly-js").addEventListener("load", () => { for (const [n, f] of pending.splice(0)) plot(n, f); });

function showRun(data, title) {
  $("run-view").hidden = false;
  $("run-title").textContent = `${title} · ${data.reps} replications, seed ${data.seed}`;
  const rows = [el("tr", {}, el("th", {}, "over the horizon"), el("th", {}, "mean"), el("th", {}, "90% of replications"))];
  for (const h of data.headline) {
    rows.push(el("tr", { "data-kpi": h.kpi }, el("td", {}, LABELS[h.kpi] || h.kpi),
      el("td", { class: "mean", "data-value": h.mean }, fmt(h.mean, h.kpi)),
      el("td", {}, `${fmt(h.low, h.kpi)} – ${fmt(h.high, h.kpi)}`)));
  }
  $("headline").replaceChildren(...rows);
  const grid = $("kpi-figures");
  grid.replaceChildren(...data.figures.kpis.map(() => el("div", { class: "figure" })));
  data.figures.kpis.forEach((f, i) => plot(grid.children[i], f));
  plot($("funnel-figure"), data.figures.funnel);
  plot($("channel-figure"), data.figures.channels);
  plot($("targets-figure"), data.figures.targets);
  $("run-view").dataset.run = data.id;
}

function showCompare(data, title) {
  $("compare-view").hidden = false;
  $("compare-title").textContent = title;
  const rows = [el("tr", {}, ...["variant", "KPI", "mean", "change vs base", "90% CI"].map((t) => el("th", {}, t)))];
  for (const r of data.table) {
    rows.push(el("tr", { "data-variant": r.variant, "data-kpi": r.kpi },
      el("td", {}, r.variant), el("td", {}, LABELS[r.kpi] || r.kpi), el("td", {}, fmt(r.mean, r.kpi)),
      el("td", { class: "diff", "data-value": r.diff_mean }, r.variant === data.base ? "" : fmt(r.diff_mean, r.kpi)),
      el("td", {}, r.variant === data.base ? "" : `${fmt(r.diff_low, r.kpi)} – ${fmt(r.diff_high, r.kpi)}`)));
  }
  $("compare-table").replaceChildren(...rows);
  const grid = $("diff-figures");
  grid.replaceChildren(...data.figures.diffs.map(() => el("div", { class: "figure" })));
  data.figures.diffs.forEach((f, i) => plot(grid.children[i], f));
  $("compare-view").dataset.run = data.id;
}

function showPlan(data, title) {
  $("plan-view").hidden = false;
  $("plan-title").textContent = title;
  $("plan-status").textContent = data.status === "optimal"
    ? `Plan found: total cost ¥${fmt(data.total_cost_cny)}.`
    : `No plan meets every target. ${describe(data.diagnosis)}`;
  $("downloads").replaceChildren("Download: ", ...data.downloads.filter((n) => n.startsWith("plan") || n === "diagnostics.json")
    .map((n) => el("a", { href: `/api/runs/${encodeURIComponent(data.id)}/files/${encodeURIComponent(n)}`, download: n, class: "download" }, n, " ")));
  $("plan-figure").hidden = data.figures.plan.data.length === 0;
  plot($("plan-figure"), data.figures.plan);
  const verified = data.targets.some((t) => t.probability_met !== undefined && t.probability_met !== null);
  const head = ["target", "period", "goal", "plan", "met", "marginal cost (yuan)"];
  if (verified) head.push("chance met (simulated)");
  const rows = [el("tr", {}, ...head.map((t) => el("th", {}, t)))];
  for (const t of data.targets) {
    const row = el("tr", {}, el("td", {}, t.target), el("td", {}, t.period), el("td", {}, fmt(t.goal, t.target)),
      el("td", {}, fmt(t.plan, t.target)), el("td", {}, t.met ? "yes" : "no"), el("td", {}, fmt(t.marginal_cost)));
    if (verified) row.append(el("td", {}, t.probability_met === null ? "–" : `${Math.round(100 * t.probability_met)}%`));
    rows.push(row);
  }
  $("plan-targets").replaceChildren(...rows);
  const items = data.binding.map((b) => el("li", {}, `${b.constraint} (${b.family})`));
  for (const m of data.marginal_costs) items.push(el("li", {}, `${m.constraint}: one more unit costs ¥${fmt(m.value)}`));
  $("plan-binding").replaceChildren(...items);
  $("plan-view").dataset.run = data.id;
}

function describe(d) {
  if (!d) return "";
  const parts = [];
  for (const [k, v] of Object.entries(d.within_budget_shortfall || {})) parts.push(`${k}: short by ${fmt(v)} within the budget`);
  for (const [k, v] of Object.entries(d.budget_needed_cny || {})) parts.push(`${k} would need ¥${fmt(v)}`);
  for (const [k, v] of Object.entries(d.unreachable_shortfall || {})) parts.push(`${k}: short by ${fmt(v)} at any budget`);
  if ((d.exhausted || []).length) parts.push(`${d.exhausted.length} channel-months at capacity`);
  return parts.join("; ");
}

async function loadPast() {
  const { data } = await api("/api/runs");
  const rows = [el("tr", {}, ...["finished", "kind", "scenario", "changes", ""].map((t) => el("th", {}, t)))];
  for (const r of data.runs || []) {
    rows.push(el("tr", {}, el("td", {}, r.finished), el("td", {}, r.kind), el("td", {}, r.source),
      el("td", {}, r.overrides), el("td", {}, el("button", { onclick: () => openRun(r.id) }, "open"))));
  }
  $("past-runs").replaceChildren(...rows);
}

// ---- variants and saving -----------------------------------------------------------

function keepVariant() {
  const name = $("variant-name").value.trim() || `variant ${Object.keys(state.variants).length + 1}`;
  if (name === "base") return showProblems([{ text: "the name 'base' is taken by the file as it is", path: "" }]);
  state.variants[name] = overrides();
  $("variant-name").value = "";
  showVariants();
}

function showVariants() {
  const names = Object.keys(state.variants);
  $("compare").disabled = names.length === 0 || state.job !== null;
  if (!names.length) return $("variants").replaceChildren();
  const items = names.map((n) => el("li", {}, el("b", {}, n), `: ${state.variants[n].join("  ") || "as the base"} `,
    el("button", { onclick: () => { delete state.variants[n]; showVariants(); } }, "remove")));
  $("variants").replaceChildren(el("span", {}, "Variants kept (compared with the file as it is):"), el("ul", {}, ...items));
}

async function saveVariant() {
  const name = $("variant-name").value.trim() || "variant";
  const { ok, data } = await api("/api/save", { scenario: state.scenario, overrides: overrides(), name });
  if (!ok) return showProblems(data.problems);
  $("save-view").hidden = false;
  $("save-path").textContent = `Wrote ${data.path}; the change against the base:`;
  $("save-diff").textContent = data.diff || "(no change)";
  await loadScenarios(state.scenario, false);  // list the saved file; keep the levers as set
}

async function uploadFile(event) {
  const file = event.target.files[0];
  if (!file) return;
  if (file.size > 256 * 1024) return showProblems([{ text: `${file.name}: larger than 256 KiB`, path: "" }]);
  const text = await file.text();
  const { ok, data } = await api("/api/upload", { name: file.name, text });
  event.target.value = "";
  if (!ok) return showProblems(data.problems, false);  // about the file, not the form
  await loadScenarios(data.id);
}

function resetLevers() {
  buildForm();
}

window.addEventListener("DOMContentLoaded", () => {
  $("scenario").addEventListener("change", (e) => openScenario(e.target.value));
  $("upload").addEventListener("change", uploadFile);
  $("run").addEventListener("click", () => startJob("run"));
  $("plan").addEventListener("click", () => startJob("plan"));
  $("compare").addEventListener("click", () => startJob("compare"));
  $("cancel").addEventListener("click", cancelJob);
  $("keep").addEventListener("click", keepVariant);
  $("save").addEventListener("click", saveVariant);
  $("reset").addEventListener("click", resetLevers);
  loadScenarios();
  loadPast();
});
