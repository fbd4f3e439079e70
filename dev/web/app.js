// The wizard page: a reference client of the public HTTP API (openapi.yaml). No framework, no
// build step, nothing fetched but this server's own routes. The client secret is sent once and
// never kept: not in the DOM after saving, not in storage.
"use strict";

// `token`: a --dev-token, kept in memory only; with it the API and the event stream take it.
const state = { org: "org-1", token: "", id: null, connection: null, source: null, emulator: null };

const $ = (id) => document.getElementById(id);
const STEP_TITLES = {
  "start": "3.1 Start",
  "setup": "3.2–3.6 One command",
  "app-registration": "3.2 App registration",
  "client-secret": "3.3 Client secret",
  "federated-credential": "3.3 Federated credential",
  "subscription": "3.4 Subscription",
  "custom-role": "3.5 Custom role",
  "role-assignment": "3.6 Role assignment",
};

async function api(method, path, body) {
  const headers = state.token ? { "Authorization": `Bearer ${state.token}` } : { "X-Org-Id": state.org };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  return { status: res.status, ok: res.ok, body: json };
}

function clearErrors(form) {
  form.querySelectorAll(".error").forEach((e) => { e.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

// A problem document rendered where it belongs: each field error next to its field (focus on the
// first), anything else in the step's status area, naming the step to go back to.
function showProblem(stepKey, form, problem) {
  const status = $("status-" + stepKey);
  let first = null;
  for (const err of (problem && problem.errors) || []) {
    const el = $("err-" + err.field);
    const input = form && form.querySelector(`[name="${err.field}"]`);
    if (el) el.textContent = `${label(err.field)} ${err.message}`;
    if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
  }
  if (first) { first.focus(); if (status) status.textContent = ""; return; }
  if (!status) return;
  status.textContent = "";
  status.append(problemBlock(problem));
}

function label(field) {
  const input = document.querySelector(`[name="${field}"]`);
  const lab = input && input.id ? document.querySelector(`label[for="${input.id}"]`) : null;
  return lab ? lab.textContent.trim() : field;
}

function problemBlock(p) {
  const box = document.createElement("div");
  box.className = "problem";
  if (!p) { box.textContent = "The server did not answer. Try again."; return box; }
  const title = document.createElement("strong");
  title.textContent = p.title || "Something went wrong";
  const detail = document.createElement("p");
  detail.textContent = p.detail || "";
  box.append(title, detail);
  if (p.missingActions && p.missingActions.length) {
    const h = document.createElement("p");
    h.textContent = `Missing actions (${p.missingActions.length}):`;
    const ul = document.createElement("ul");
    ul.className = "missing";
    p.missingActions.forEach((a) => { const li = document.createElement("li"); li.textContent = a; ul.append(li); });
    box.append(h, ul);
  }
  if (p.step && p.step !== currentStep()) {
    const go = document.createElement("button");
    go.type = "button";
    go.textContent = `Go to ${STEP_TITLES[p.step] || p.step}`;
    go.addEventListener("click", () => show(p.step, true));
    box.append(go);
  }
  return box;
}

let shown = "start";
function currentStep() { return shown; }

function show(step, focus) {
  shown = step;
  document.querySelectorAll("[data-panel]").forEach((s) => { s.hidden = s.dataset.panel !== step; });
  document.querySelectorAll("#stepper button").forEach((b) => {
    if (b.dataset.step === step) b.setAttribute("aria-current", "step"); else b.removeAttribute("aria-current");
  });
  if (focus) {
    const panel = document.querySelector(`[data-panel="${step}"]`);
    // The step's own field or action; the emulator's helpers are never first.
    const target = panel.querySelector("input:not([type=hidden]):not([type=radio]), select, button:not(.emulator)");
    (target || panel.querySelector("h2")).focus();
  }
}

function render(c) {
  state.connection = c;
  state.id = c.connectionId;
  $("side-id").textContent = c.connectionId;
  $("side-status").textContent = c.status;
  $("side-next").textContent = c.nextStep ? (STEP_TITLES[c.nextStep] || c.nextStep) : "none: connected";
  $("side-credential").textContent = c.credentialType === "federated" ? "federated credential" : "client secret";
  $("side-secret").textContent = c.clientSecret ? `${c.clientSecret.hint}… (saved)` : "-";
  $("side-expiry").textContent = c.clientSecret && c.clientSecret.expiresAt ? c.clientSecret.expiresAt.slice(0, 10) : "-";
  const federated = c.credentialType === "federated";
  document.querySelectorAll("[data-secret-only]").forEach((b) => { b.parentElement.hidden = federated; });
  document.querySelectorAll("[data-federated-only]").forEach((b) => { b.parentElement.hidden = !federated; });
  $("form-rotation").hidden = federated || !c.clientSecret;
  // Degraded by what the one command puts back: a new command repairs it.
  const repair = c.health && c.health.repairByCommand;
  $("repair").hidden = !repair;
  if (repair) {
    $("repair-why").textContent = `Degraded: ${c.health.diagnosis ? c.health.diagnosis.code : "a check failed"}. Run a new command in Azure Cloud Shell: it puts back the role assignment, the role's actions and the federated credential, then connects again.`;
  }
  if (c.rotation) {
    $("rotation").checked = c.rotation.enabled;
    if (c.rotation.daysBefore) $("rotationDays").value = c.rotation.daysBefore;
  }
  if (c.tenantId) $("tenantId").value = c.tenantId;
  if (c.clientId) $("clientId").value = c.clientId;
  if (c.subscriptionId) $("subscriptionId").value = c.subscriptionId;
  if (c.estate) {
    document.querySelector("input[name=scope][value=managementGroup]").checked = true;
    $("managementGroupId").value = c.estate.managementGroupId;
    if (c.estate.defaultSubscriptionId) $("defaultSubscriptionId").value = c.estate.defaultSubscriptionId;
  }
  showScope();
  $("estate").hidden = !c.estate || !["connected", "degraded"].includes(c.status);
  showSurvey(c.estate && c.estate.survey);
  try { sessionStorage.setItem("azure-connect", JSON.stringify({ org: state.org, id: c.connectionId })); } catch (_) { /* private mode */ }
}

async function afterStep(resp, stepKey, form) {
  if (!resp.ok) { showProblem(stepKey, form, resp.body); return false; }
  render(resp.body);
  show(resp.body.nextStep || "role-assignment", true);
  return true;
}

function bind() {
  document.querySelectorAll("#stepper button").forEach((b) => b.addEventListener("click", () => show(b.dataset.step, true)));

  $("form-start").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    state.org = $("orgId").value.trim();
    const token = $("devToken").value.trim();
    if (token !== state.token) { state.token = token; await listen(); }
    const choice = form.querySelector("[name=credentialType]:checked").value;
    // The one command sets up a secretless connection.
    const credentialType = choice === "command" ? "federated" : choice;
    const r = await api("POST", "/connections", { accountId: $("accountId").value.trim(), credentialType });
    if (r.status === 401) { $("err-orgId").textContent = "Organization is required."; $("orgId").focus(); return; }
    if (choice === "command" && r.ok) {
      render(r.body);
      show("setup", false);
      await makeCommand();
      return;
    }
    await afterStep(r, "start", form);
  });

  $("form-open").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    state.org = $("orgId").value.trim();
    const r = await api("GET", `/connections/${encodeURIComponent($("openId").value.trim())}`);
    if (!r.ok) {
      if (r.body && r.body.code === "connection-not-found") { $("err-connectionId").textContent = r.body.detail; $("openId").focus(); return; }
      showProblem("start", form, r.body); return;
    }
    render(r.body);
    show(r.body.nextStep || "role-assignment", true);
  });

  $("form-app-registration").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    const r = await api("PUT", `/connections/${state.id}/app-registration`, { tenantId: $("tenantId").value.trim(), clientId: $("clientId").value.trim() });
    await afterStep(r, "app-registration", form);
  });

  $("form-client-secret").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    const body = { clientSecret: $("clientSecret").value };
    if ($("expiresAt").value) body.expiresAt = $("expiresAt").value;
    const r = await api("PUT", `/connections/${state.id}/client-secret`, body);
    // Sent once: the field is emptied whatever the answer (a refused secret is not kept either).
    $("clientSecret").value = "";
    await afterStep(r, "client-secret", form);
  });

  $("fed-show").addEventListener("click", async () => {
    const r = await api("GET", `/connections/${state.id}/federated-credential`);
    if (!r.ok) { showProblem("federated-credential", null, r.body); return; }
    const v = r.body;
    $("fed-issuer").textContent = v.issuer;
    $("fed-subject").textContent = v.subject;
    $("fed-audience").textContent = v.audiences.join(", ");
    $("fed-name").textContent = v.name;
    $("fed-cli").textContent = v.azCli;
    $("fed-values").hidden = false;
    const c = await api("GET", `/connections/${state.id}`);
    if (c.ok) render(c.body);
    $("fed-issuer").nextElementSibling.focus();
    $("status-federated-credential").textContent = "Saved. Add the credential in the portal, then continue with 3.4.";
  });

  document.querySelectorAll("button.copy").forEach((b) => b.addEventListener("click", () => copy($(b.dataset.copy).textContent, b)));

  document.querySelectorAll("input[name=scope]").forEach((r) => r.addEventListener("change", showScope));
  $("form-subscription").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    let r;
    if (groupChosen()) {
      const body = { managementGroupId: $("managementGroupId").value.trim() };
      const own = $("defaultSubscriptionId").value.trim();
      if (own) body.defaultSubscriptionId = own;
      r = await api("PUT", `/connections/${state.id}/scope`, body);
    } else {
      r = await api("PUT", `/connections/${state.id}/subscription`, { subscriptionId: $("subscriptionId").value.trim() });
    }
    await afterStep(r, "subscription", form);
  });

  $("form-custom-role").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    const r = await api("GET", `/connections/${state.id}/custom-role?format=${$("roleFormat").value}`);
    if (!r.ok) { showProblem("custom-role", form, r.body); return; }
    const text = JSON.stringify(r.body, null, 2);
    $("role-json").textContent = text;
    const link = $("role-download");
    if (link.dataset.url) URL.revokeObjectURL(link.dataset.url);
    link.dataset.url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    link.href = link.dataset.url;
    $("role-out").hidden = false;
    $("status-custom-role").textContent = "Exported. Paste it in the portal's JSON tab and create the role.";
    const c = await api("GET", `/connections/${state.id}`);
    if (c.ok) render(c.body);
    $("role-copy").focus();
  });
  $("role-copy").addEventListener("click", () => copy($("role-json").textContent, $("role-copy")));
  $("role-next").addEventListener("click", () => show("role-assignment", true));

  $("connect").addEventListener("click", connect);
  $("repair-command").addEventListener("click", async () => { show("setup", false); await makeCommand(); });
  $("setup-make").addEventListener("click", makeCommand);
  $("setup-copy").addEventListener("click", () => copy($("setup-command").textContent, $("setup-copy")));

  $("form-rotation").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    const body = { enabled: $("rotation").checked, daysBefore: Number($("rotationDays").value) };
    const r = await api("PUT", `/connections/${state.id}/rotation`, body);
    if (!r.ok) {
      const p = r.body;
      $("status-rotation").textContent = p ? `${p.title}: ${p.detail}` : "Not saved.";
      return;
    }
    render(r.body);
    $("status-rotation").textContent = r.body.rotation.enabled ? "Rotation on." : "Rotation off.";
  });
}

// The one command: a fresh setup command (the one before stops working), shown with a copy button.
async function makeCommand() {
  $("status-setup").textContent = "";
  $("setup-progress").textContent = "";
  const r = await api("POST", `/connections/${state.id}/setup-command`);
  if (!r.ok) { $("status-setup").append(problemBlock(r.body)); return; }
  $("setup-command").textContent = r.body.command;
  $("setup-expires").textContent = `Valid until ${new Date(r.body.expiresAt).toLocaleTimeString()}; a new command replaces it.`;
  $("setup-box").hidden = false;
  $("setup-copy").textContent = "Copy the command";
  $("setup-copy").focus();
}

// The setup script's reports, as they come (Setup Progress events), then the verdict.
const PHASES = {
  checked: "Checks passed: signed in, the subscription is enabled, you may register the app and assign the role",
  application: "App registration and its service principal ready",
  credential: "Credential on the app",
  role: "Custom role ready",
  assignment: "Role assigned",
  done: "Spot is validating the connection",
  uninstalled: "Removed",
};
async function setupEvent(type, d) {
  const list = $("setup-progress");
  if (type === "Setup Progress") {
    const li = document.createElement("li");
    li.dataset.phase = d.phase;
    li.textContent = d.phase === "failed"
      ? `Stopped at ${d.failure ? d.failure.phase : "a step"}: ${d.failure ? d.failure.code : "see the terminal"} (the terminal says what to do)`
      : (PHASES[d.phase] || d.phase);
    if (d.phase !== "done" || !list.querySelector("[data-phase=done]")) list.append(li);
  } else if (type === "Estate Survey Progress") {
    // A large group surveyed in the background: how far, and the list again when it ends.
    showSurvey(d);
    if (d.state !== "surveying") await showEstate();
  } else if (type === "Account Connected" && shown === "setup") {
    const c = await api("GET", `/connections/${state.id}`);
    if (c.ok) render(c.body);
    $("status-setup").textContent = "Connected.";
  }
}

// How a survey in the background stands (none: the group was surveyed within the answer).
function showSurvey(survey) {
  const p = $("estate-survey");
  p.hidden = !survey;
  if (!survey) return;
  p.className = survey.state === "failed" ? "warning" : "";
  p.textContent = survey.state === "surveying"
    ? `Surveying the group in the background: ${survey.surveyed} of ${survey.total} subscriptions so far.`
    : survey.state === "done"
      ? `All ${survey.total} subscriptions of the group surveyed.`
      : `The survey stopped (${survey.code}) after ${survey.surveyed} of ${survey.total} subscriptions; click "Connect Account" to survey again.`;
}

const STATUS_TITLES = {
  "linked": "linked",
  "awaiting-account": "awaiting an account",
  "missing-actions": "missing permissions",
  "disabled": "disabled in Azure",
  "lost": "no longer in the group",
};

function groupChosen() {
  return document.querySelector("input[name=scope][value=managementGroup]").checked;
}

function showScope() {
  $("scope-group").hidden = !groupChosen();
  $("scope-subscription").hidden = groupChosen();
}

// An estate's subscriptions, every page, each with its status; an account field for each one
// awaiting an account.
async function showEstate() {
  const items = [];
  let path = `/connections/${state.id}/subscriptions?limit=500`;
  while (path) {
    const r = await api("GET", path);
    if (!r.ok) return;
    items.push(...r.body.items);
    path = r.body.next ? `${r.body.next}&limit=500` : null;
  }
  const body = document.querySelector("#estate-table tbody");
  body.replaceChildren(...items.map(estateRow));
  $("estate").hidden = false;
}

function estateRow(item) {
  const row = document.createElement("tr");
  row.id = `sub-${item.subscriptionId}`;
  const name = document.createElement("td");
  name.textContent = `${item.displayName} (${item.subscriptionId})`;
  const status = document.createElement("td");
  status.className = `status-${item.status}`;
  status.textContent = STATUS_TITLES[item.status] || item.status;
  if (item.missingActions && item.missingActions.length) {
    status.textContent += `: ${item.missingActions.join(", ")}`;
  }
  if (item.overPrivileged) {
    const warn = document.createElement("p");
    warn.className = "warning";
    warn.textContent = item.overPrivileged.advice;
    status.append(warn);
  }
  const account = document.createElement("td");
  if (item.accountId) {
    account.textContent = item.accountId;
  } else if (item.status === "awaiting-account") {
    const form = document.createElement("form");
    form.noValidate = true;
    const id = `account-${item.subscriptionId}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.className = "visually-hidden";
    label.textContent = `Spot account for ${item.displayName}`;
    const input = document.createElement("input");
    input.id = id;
    input.placeholder = "act-…";
    input.autocomplete = "off";
    const button = document.createElement("button");
    button.type = "submit";
    button.textContent = "Link";
    const err = document.createElement("p");
    err.className = "error";
    err.setAttribute("role", "alert");
    form.append(label, input, button, err);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const r = await api("PUT", `/connections/${state.id}/subscriptions/${item.subscriptionId}`, { accountId: input.value.trim() });
      if (r.ok) {
        const next = estateRow(r.body);
        row.replaceWith(next);
        next.querySelector("td").tabIndex = -1;
        next.querySelector("td").focus();
      } else {
        err.textContent = (r.body && r.body.detail) || "Not linked.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    });
    account.append(form);
  } else {
    account.textContent = "-";
  }
  row.append(name, status, account);
  return row;
}

async function copy(text, button) {
  try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; } catch (_) { button.textContent = "Select and copy (Ctrl+C)"; }
}

async function connect() {
  const out = $("connect-result");
  const button = $("connect");
  out.textContent = "";
  button.disabled = true;
  $("connect-progress").hidden = false;
  document.querySelector('[data-panel="role-assignment"]').setAttribute("aria-busy", "true");
  const r = await api("POST", `/connections/${state.id}/connect`);
  $("connect-progress").hidden = true;
  document.querySelector('[data-panel="role-assignment"]').removeAttribute("aria-busy");
  button.disabled = false;
  if (r.ok) {
    render(r.body);
    const v = r.body.validation || {};
    const box = document.createElement("div");
    box.className = "connected";
    const h = document.createElement("h3");
    h.textContent = "Connected";
    h.tabIndex = -1;
    const p = document.createElement("p");
    const expiry = r.body.clientSecret && r.body.clientSecret.expiresAt ? ` The client secret expires on ${r.body.clientSecret.expiresAt.slice(0, 10)}.` : "";
    const e = r.body.estate;
    p.textContent = e
      ? `Management group ${e.managementGroupId}: ${e.subscriptions} subscriptions found (${Object.entries(e.byStatus).map(([k, n]) => `${n} ${STATUS_TITLES[k] || k}`).join(", ")}).${expiry}`
      : `Subscription ${v.subscriptionName || r.body.subscriptionId} is linked to ${r.body.accountId}.${expiry}`;
    box.append(h, p);
    (v.warnings || []).forEach((w) => { const wp = document.createElement("p"); wp.className = "warning"; wp.textContent = w; box.append(wp); });
    if (v.overPrivileged) {
      const op = document.createElement("p");
      op.className = "warning";
      op.id = "over-privileged";
      op.textContent = v.overPrivileged.advice;
      box.append(op);
    }
    out.append(box);
    h.focus();
    if (r.body.estate) await showEstate();
    showSurvey(r.body.estate && r.body.estate.survey);
    return;
  }
  const c = await api("GET", `/connections/${state.id}`);
  if (c.ok) render(c.body);
  const block = problemBlock(r.body);
  if (r.body && r.body.step) {
    const where = document.createElement("p");
    where.className = "where";
    where.textContent = `To fix at: ${STEP_TITLES[r.body.step] || r.body.step}`;
    block.prepend(where);
  }
  if (r.body && r.body.retryable) {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.id = "connect-retry";
    retry.textContent = "Try again";
    retry.addEventListener("click", connect);
    block.append(retry);
    out.append(block);
    retry.focus();
  } else {
    out.append(block);
    button.focus();
  }
}

// Outcome events as they happen (server-sent events from the same sink as events.jsonl). With a
// token, the stream needs a one-time ticket (an EventSource cannot send a header) and shows the
// token's organization only.
async function listen() {
  if (!window.EventSource) return;
  if (state.source) { state.source.close(); state.source = null; }
  let url = "/wizard/events";
  if (state.token) {
    const r = await fetch("/wizard/ticket", { method: "POST", headers: { "Authorization": `Bearer ${state.token}` } });
    if (!r.ok) return;
    url += `?ticket=${encodeURIComponent((await r.json()).ticket)}`;
  }
  const source = new EventSource(url);
  state.source = source;
  // Open before the first request, so that none of its events is missed (at most 2 s).
  const opened = new Promise((resolve) => {
    source.addEventListener("open", resolve, { once: true });
    setTimeout(resolve, 2000);
  });
  source.addEventListener("outcome", (e) => {
    let ev;
    try { ev = JSON.parse(e.data); } catch (_) { return; }
    const d = ev.detail || {};
    if (state.id && d.connectionId && d.connectionId !== state.id) return;
    const li = document.createElement("li");
    const step = d.step ? ` (${d.step})` : "";
    const code = d.problem && d.problem.code ? `: ${d.problem.code}` : "";
    li.textContent = `${ev["detail-type"]}${step}${code}`;
    if (state.id && d.connectionId === state.id) setupEvent(ev["detail-type"], d);
    const list = $("events");
    list.prepend(li);
    while (list.children.length > 20) list.lastChild.remove();
  });
  await opened;
}

// With the emulator (GET /local/azure), the demo world's values to type, and what the portal
// does, done in the emulator: the role assigned to the app, the federated credential added.
async function localAzure() {
  let about;
  try { const r = await fetch("/local/azure"); if (!r.ok) return; about = await r.json(); } catch (_) { return; }
  if (about.azure !== "emulator" || !about.demo) return;
  state.emulator = about.demo;
  const d = about.demo;
  $("demo-tenant").textContent = d.tenantDomain ? `${d.tenantId} (or ${d.tenantDomain})` : (d.tenantId || "-");
  $("demo-client").textContent = d.clientId || "-";
  $("demo-secret").textContent = d.clientSecret ? `${d.clientSecret}${d.clientSecretExpiresAt ? ` (expires ${d.clientSecretExpiresAt})` : ""}` : "-";
  $("demo-subscription").textContent = (d.subscriptions[0] && d.subscriptions[0].subscriptionId) || "-";
  $("demo-group").textContent = (d.managementGroups[0] && d.managementGroups[0].managementGroupId) || "-";
  $("local-azure").hidden = false;
  document.querySelectorAll("[data-emulator-only]").forEach((e) => { e.hidden = false; });
  $("emu-assign").addEventListener("click", emulatorAssign);
  $("emu-federated").addEventListener("click", emulatorFederated);
}

async function emulatorControl(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers["Authorization"] = `Bearer ${state.token}`;
  const res = await fetch(`/local/azure/emulator/${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  let detail = "";
  if (!res.ok) { try { detail = (await res.json()).error.message; } catch (_) { detail = `HTTP ${res.status}`; } }
  return { ok: res.ok, detail };
}

// The exported role (3.5), granted to the connection's app at the role's scope.
async function emulatorAssign() {
  const status = $("status-emu-assign");
  status.textContent = "";
  const c = state.connection;
  const r = await api("GET", `/connections/${state.id}/custom-role?format=portal`);
  if (!r.ok || !c || !c.clientId) { status.textContent = "Export the role (3.5) and save the app registration (3.2) first."; return; }
  const role = r.body.properties;
  const scope = role.assignableScopes[0];
  const group = scope.match(/managementGroups\/([^/]+)$/);
  const path = group ? `management-groups/${encodeURIComponent(group[1])}/grants` : `subscriptions/${encodeURIComponent(scope.split("/")[2])}/grants`;
  const done = await emulatorControl(path, { appId: c.clientId, actions: role.permissions[0].actions });
  status.textContent = done.ok ? `Assigned "${role.roleName}" to the app at ${scope} in the emulator. Now Connect Account.` : `Not assigned: ${done.detail}`;
  $("connect").focus();
}

// The federated credential the wizard hands out (3.3), added to the connection's app.
async function emulatorFederated() {
  const status = $("status-federated-credential");
  const c = state.connection;
  const r = await api("GET", `/connections/${state.id}/federated-credential`);
  if (!r.ok || !c || !c.clientId) { status.textContent = "Save the app registration (3.2) first."; return; }
  const v = r.body;
  const done = await emulatorControl(`apps/${encodeURIComponent(c.clientId)}/federated-credentials`,
    { name: v.name, issuer: v.issuer, subject: v.subject, audiences: v.audiences });
  status.textContent = done.ok ? "Added to the app in the emulator. Continue with 3.4." : `Not added: ${done.detail}`;
}

bind();
show("start", false);
listen();
localAzure();
