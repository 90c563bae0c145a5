// The staff console: plain browser JavaScript, no build step, talking to /api/v1 with the
// token given at log-in (kept for this browser tab only, in sessionStorage).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem("revisit-token"), me: null, charts: {} };

// ---- calling the API ---------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `请求失败（HTTP ${status}）`);
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}

async function api(path, { method = "GET", body, raw } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  let payload;
  if (raw !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = raw;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    if (res.status === 401) logout("登录已失效，请重新登录");
    throw new ApiError(res.status, data);
  }
  return data;
}

function showError(e) {
  const b = $("#banner");
  b.textContent = e instanceof Error ? e.message : String(e);
  b.hidden = false;
}

function clearError() { $("#banner").hidden = true; }

// ---- small helpers -----------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function fillTable(sel, rows) {
  const tbody = $(`${sel} tbody`);
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
  $(sel).hidden = false;
}

const yuan = (cents) => (cents / 100).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
// Status as a text badge (no emoji: without an emoji font they render as empty boxes).
const mark = (ok) =>
  ok === true ? el("span", { class: "badge ok" }, "正常") : ok === false ? el("span", { class: "badge bad" }, "异常") : el("span", { class: "badge off" }, "未启用");
// Times on the chain's clock (app.timezone), whatever the browser's; the header says which.
const when = (t) =>
  t ? new Date(t).toLocaleString("zh-CN", { hour12: false, timeZone: (state.me && state.me.timezone) || undefined }) : "";
// What an order's status means to staff.
const ORDER_STATUS = { completed: "已完成", refunded: "已退款", partially_refunded: "部分退款", cancelled: "已取消", pending: "待付款", paid: "已付款" };
const orderStatus = (s) => ORDER_STATUS[s] || s || "";

function institution() {
  return $("#institution").value;
}

// ---- log-in ------------------------------------------------------------------------------

async function login(token) {
  state.token = token;
  try {
    state.me = await api("/api/v1/me");
  } catch (e) {
    state.token = null;
    $("#login-error").textContent = e.message;
    return;
  }
  sessionStorage.setItem("revisit-token", token);
  const admin = state.me.role === "admin";
  document.body.classList.toggle("is-admin", admin);
  $("#who-text").textContent = admin ? "管理员（整个连锁）" : `员工 · ${state.me.institution}`;
  $("#tz-note").textContent = `时间为 ${state.me.timezone}`;
  const select = $("#institution");
  const options = state.me.institutions.map((i) => el("option", { value: i.code }, `${i.code} ${i.name}`));
  if (admin) options.unshift(el("option", { value: "" }, "全部机构"));
  select.replaceChildren(...options);
  $("#login").hidden = true;
  $("#who").hidden = false;
  $("#main").hidden = false;
  showTab("check");
}

function logout(message) {
  sessionStorage.removeItem("revisit-token");
  state.token = null;
  state.me = null;
  $("#main").hidden = true;
  $("#who").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

// ---- tabs --------------------------------------------------------------------------------

const loaders = {
  check: loadCheck,
  init: async () => {},
  import: async () => {},
  birthday: loadRevisits,
  customers: () => loadCustomers(false),
  tasks: loadTasks,
  jobs: loadJobs,
  dashboard: loadDashboard,
};

function showTab(name) {
  clearError();
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${name}`;
  loaders[name]().catch(showError);
}

// ---- system check ------------------------------------------------------------------------

async function loadCheck() {
  const items = await api("/api/v1/system/check");
  fillTable("#check-table", items.map((i) => [mark(i.ok), i.name, i.detail]));
}

// ---- initialise --------------------------------------------------------------------------

async function runInit(ev) {
  ev.preventDefault();
  clearError();
  const rebuild = $("#init-rebuild").checked;
  let confirm_name = null;
  if (rebuild) {
    confirm_name = prompt("强制重建会清空分析库（ClickHouse）的全部表，再从主库全量同步。请输入主库的数据库名确认：");
    if (!confirm_name) return;
  }
  const answer = await api("/api/v1/system/init", {
    method: "POST",
    body: {
      skip_clickhouse: $("#init-skip-ch").checked,
      sample_data: $("#init-sample").checked,
      rebuild_projections: rebuild,
      confirm: confirm_name,
    },
  });
  fillTable("#init-table", answer.steps.map((s) => [mark(s.ok), s.name, s.detail]));
  if (answer.import_batch) followImport(answer.import_batch, "示例数据");
}

// ---- import ------------------------------------------------------------------------------

const KIND_STAGE = { institutions: 0, doctors: 1, projects: 1, products: 1, customers: 2, consumption_records: 3, consultations: 3 };

function kindOf(fileName) {
  const stem = fileName.replace(/\.json$/, "").replace(/_(add|update|new|changed)$/, "");
  return stem in KIND_STAGE ? stem : null;
}

async function upload(file, kind, inst) {
  const params = new URLSearchParams({ kind });
  if (inst) params.set("institution", inst);
  return api(`/api/v1/imports?${params}`, { method: "POST", raw: await file.arrayBuffer() });
}

async function importOne(ev) {
  ev.preventDefault();
  clearError();
  const file = $("#import-file").files[0];
  if (!file) return showError("请选择一个 JSON 文件");
  const kind = $("#import-kind").value;
  const perInstitution = ["customers", "consumption_records", "consultations", "doctors"].includes(kind);
  const inst = perInstitution ? institution() || (state.me.institution ?? "") : "";
  if (["customers", "consumption_records", "consultations"].includes(kind) && !inst) return showError("客户、消费记录和咨询记录需要先在右上角选择机构");
  $("#import-results tbody").replaceChildren();
  $("#import-errors").replaceChildren();
  const answer = await upload(file, kind, inst);
  await followImport(answer.batch, file.name);
}

async function importFolder(ev) {
  ev.preventDefault();
  clearError();
  const files = [...$("#import-folder").files]
    .map((f) => {
      const parts = (f.webkitRelativePath || f.name).split("/");
      const parent = parts.length > 1 ? parts[parts.length - 2] : "";
      return { f, kind: kindOf(f.name), parent };
    })
    .filter((x) => x.kind);
  if (!files.length) return showError("文件夹里没有可导入的 JSON 文件（institutions.json、customers.json……）");
  files.sort((a, b) => KIND_STAGE[a.kind] - KIND_STAGE[b.kind]);
  $("#import-results tbody").replaceChildren();
  $("#import-errors").replaceChildren();
  for (const { f, kind, parent } of files) {
    const perInstitution = ["customers", "consumption_records", "consultations"].includes(kind) || (kind === "doctors" && /^[A-Z0-9-]+$/.test(parent) && parent !== "common");
    const inst = perInstitution ? parent : "";
    const answer = await upload(f, kind, inst);
    const ok = await followImport(answer.batch, `${parent}/${f.name}`);
    if (!ok) break;
  }
}

/// Polls an import until it ends, showing progress; true when it was imported.
async function followImport(batch, label) {
  $("#import-progress").hidden = false;
  for (;;) {
    const s = await api(`/api/v1/imports/${batch}`);
    const bar = $("#import-bar");
    if (s.current) {
      bar.value = s.current.total ? Math.round((100 * s.current.done) / s.current.total) : 0;
      $("#import-status").textContent = `正在导入 ${label}：${s.current.done} / ${s.current.total} 条`;
    } else if (s.state === "queued") {
      $("#import-status").textContent = `${label} 已排队，等待 worker……`;
    }
    if (s.state === "done" || s.state === "failed") {
      bar.value = 100;
      $("#import-status").textContent = s.state === "done" ? `${label} 导入完成` : `${label} 导入失败：${s.error}`;
      showImportResults(s.files);
      return s.state === "done";
    }
    await new Promise((r) => setTimeout(r, 800));
  }
}

function showImportResults(files) {
  const tbody = $("#import-results tbody");
  for (const f of files) {
    tbody.append(el("tr", {}, ...[f.file, f.total, f.inserted, f.updated, f.unchanged, f.rejected].map((c) => el("td", {}, String(c)))));
    if (f.errors.length) {
      const list = el("ul", { class: "record-errors" });
      for (const e of f.errors) {
        // A file refused whole is the file's error, not a record's.
        list.append(el("li", {}, e.field === "(file)" ? e.message : `第 ${e.record + 1} 条${e.key ? `（${e.key}）` : ""} 字段 ${e.field}：${e.message}`));
      }
      $("#import-errors").append(el("h4", {}, `${f.file} 被拒绝的记录（${f.errors.length}）`), list);
    }
  }
  $("#import-results").hidden = false;
}

// ---- birthday revisit --------------------------------------------------------------------

function birthdayInstitution() {
  return institution() || state.me.institution || "all";
}

async function listUpcoming() {
  clearError();
  const inst = institution() || state.me.institution;
  if (!inst) return showError("请先在右上角选择一家机构");
  const days = $("#birthday-days").value;
  const r = await api(`/api/v1/reminders/${encodeURIComponent(inst)}/upcoming-birthdays?days=${days}`);
  fillTable("#upcoming-table", r.items.map((c) => [c.code, c.name, c.phone, c.next_birthday + (c.lunar_birthday ? `（农历${c.lunar_birthday}）` : ""), c.days_until === 0 ? "今天" : `${c.days_until} 天`, c.last_visit || ""]));
  $("#birthday-status").textContent = `${r.institution}：未来 ${r.days} 天内有 ${r.items.length} 位客户过生日`;
}

async function runBirthday(ev) {
  ev.preventDefault();
  clearError();
  const test_mode = $("#birthday-test").checked;
  if (!test_mode && !confirm("正式模式会真的给客户发送消息，确定吗？")) return;
  const started = Date.now();
  const kind = $("#revisit-kind").value;
  const run = await api(`/api/v1/reminders/${encodeURIComponent(birthdayInstitution())}/run`, {
    method: "POST",
    body: { test_mode, kind },
  });
  $("#birthday-status").textContent = `已开始（任务 ${run.job_id}${test_mode ? "，测试模式" : ""}）……`;
  for (let i = 0; i < 600; i++) {
    // A slow answer or a network hiccup must not stop the watching: try again next second.
    const s = await api(`/api/v1/reminders/runs/${run.job_id}`).catch((e) => (i < 10 ? { state: "pending" } : Promise.reject(e)));
    const shown = await loadRevisits();
    const fresh = shown.filter((r) => Date.parse(r.created_at) >= started - 5000);
    // A message waiting for staff approval is not waiting for the pipeline.
    const waiting = fresh.filter((r) => ["pending", "generated", "sending"].includes(r.status) && r.approval !== "pending").length;
    $("#birthday-status").textContent = `扫描${{ pending: "等待中", running: "进行中", done: "完成", failed: "失败" }[s.state] || s.state}；本次新回访 ${fresh.length} 条，其中 ${waiting} 条仍在生成或发送`;
    if (s.state === "failed") return showError(`回访扫描失败：${s.error || ""}`);
    if (s.state === "done" && waiting === 0) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function loadRevisits() {
  const params = new URLSearchParams({ limit: "100" });
  const inst = institution();
  if (inst) params.set("institution", inst);
  const status = $("#revisit-status").value;
  if (status) params.set("status", status);
  const page = await api(`/api/v1/revisits?${params}`);
  const tbody = $("#revisit-table tbody");
  tbody.replaceChildren(
    ...page.items.map((r) => {
      const actions = el("td");
      if (r.retryable) {
        actions.append(el("button", { type: "button", class: "retry", "data-revisit": String(r.id), onclick: () => retryRevisit(r.id) }, "重试"));
      } else if (r.status === "failed") {
        actions.append(el("span", { class: "hint" }, "重试无法解决，请先处理原因"));
      }
      if (r.approval === "pending" && r.status === "generated") {
        actions.append(
          el("button", { type: "button", class: "approve", "data-revisit": String(r.id), onclick: () => decide(r.id, "approve") }, "批准发送"),
          el("button", { type: "button", class: "reject", "data-revisit": String(r.id), onclick: () => decide(r.id, "reject") }, "驳回"),
        );
      }
      return el(
        "tr",
        { class: `status-${r.status}`, "data-revisit": String(r.id) },
        el("td", {}, String(r.id)),
        el("td", {}, r.institution),
        el("td", {}, `${r.customer_code} ${r.name}`),
        el("td", {}, r.phone),
        el("td", {}, `${r.occasion_label} ${r.occasion_date}`),
        el("td", { class: "status" }, r.test_mode && r.status === "sent" ? "测试·未发送" : r.status_label),
        el("td", { class: "message" }, r.message || ""),
        el("td", { class: "reason" }, (r.delivery_uncertain ? "可能已送达；" : "") + (r.last_error || "")),
        actions,
      );
    }),
  );
  $("#revisit-empty").hidden = page.items.length > 0;
  return page.items;
}

// A message of an institution that asks for approval waits until staff decide.
async function decide(id, decision) {
  clearError();
  const body = { ids: [id] };
  if (decision === "reject") {
    const reason = prompt("驳回原因（可留空）：");
    if (reason === null) return;
    if (reason.trim()) body.reason = reason.trim();
  }
  const r = await api(`/api/v1/approvals/${decision}`, { method: "POST", body }).catch(showError);
  if (r && r.ids.length === 0) showError("这条消息已不在待审批中");
  await loadRevisits();
}

async function retryRevisit(id) {
  clearError();
  try {
    await api(`/api/v1/revisits/${id}/retry`, { method: "POST", body: {} });
  } catch (e) {
    if (e.code !== "delivery_uncertain") return showError(e);
    if (!confirm(`${e.message}\n\n确定仍要重试吗？`)) return;
    await api(`/api/v1/revisits/${id}/retry`, { method: "POST", body: { even_if_uncertain: true } }).catch(showError);
  }
  await loadRevisits();
}

// ---- customers ---------------------------------------------------------------------------

async function loadCustomers(more) {
  const inst = institution() || state.me.institution;
  if (!inst) {
    $("#customer-table tbody").replaceChildren();
    return showError("请先在右上角选择一家机构");
  }
  const params = new URLSearchParams({ limit: "50" });
  const q = $("#customer-q").value.trim();
  if (q) params.set("q", q);
  if (more && state.nextAfter) params.set("after", state.nextAfter);
  const page = await api(`/api/v1/customers/${encodeURIComponent(inst)}?${params}`);
  const rows = page.items.map((c) =>
    el(
      "tr",
      { class: "clickable", onclick: () => showCustomer(inst, c.code).catch(showError) },
      ...[c.code, c.name, c.phone, c.gender || "", c.birthday || "", c.vip_level || "", c.last_visit || "", c.opted_out ? "是" : c.opted_out_elsewhere ? "是（其他机构）" : ""].map((v) => el("td", {}, v)),
    ),
  );
  const tbody = $("#customer-table tbody");
  if (more) tbody.append(...rows);
  else tbody.replaceChildren(...rows);
  state.nextAfter = page.next_after;
  $("#customer-more").hidden = !page.next_after;
  $("#customer-empty").hidden = more || page.items.length > 0;
}

async function showCustomer(inst, code) {
  const c = await api(`/api/v1/customers/${encodeURIComponent(inst)}/${encodeURIComponent(code)}`);
  const box = $("#customer-detail");
  const orders = el("table", {}, el("thead", {}, el("tr", {}, ...["日期", "订单", "金额（元）", "状态", "项目 / 产品"].map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const o of c.orders) {
    const items = o.items.map((i) => `${i.item_name}×${i.quantity}${i.doctor_name ? `（${i.doctor_name}）` : ""}`).join("，");
    body.append(el("tr", {}, ...[o.order_date, o.order_number, yuan(o.total_amount_cents), orderStatus(o.status), items].map((v) => el("td", {}, v))));
  }
  orders.append(body);
  const ordersBlock = c.orders.length ? orders : el("p", { class: "hint" }, "暂无消费记录");
  const consultations = c.consultations.length
    ? el(
        "table",
        { id: "customer-consultations" },
        el("thead", {}, el("tr", {}, ...["日期", "方式", "咨询师", "医生", "咨询项目", "内容", "结果"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          ...c.consultations.map((k) =>
            el("tr", {}, ...[k.consult_date, k.channel || "", k.consultant || "", k.doctor_name || "", k.projects.join("、"), k.content || "", k.outcome || ""].map((v) => el("td", {}, v))),
          ),
        ),
      )
    : el("p", { class: "hint" }, "暂无咨询记录");
  // A test-mode greeting was only shown, never sent: say so, as the revisits tab does.
  const statusOf = (r) => (r.test_mode && r.status === "sent" ? "测试·未发送" : r.status_label);
  const revisits = c.revisits.length
    ? el("ul", {}, ...c.revisits.map((r) => el("li", {}, `${r.occasion_label} ${r.occasion_date} ${statusOf(r)}：${r.message || r.last_error || ""}`)))
    : el("p", { class: "hint" }, "暂无回访");
  const similar = await similarCustomers(inst, code);
  box.replaceChildren(
    el("h3", {}, `${c.code} ${c.name}`),
    el("p", {}, `手机 ${c.phone} · 生日 ${c.birthday || "未知"}${c.lunar_birthday ? `（过农历生日：${c.lunar_birthday}）` : ""} · 会员 ${c.vip_level || "无"} · 来源 ${c.source || "未知"}${c.opted_out ? " · 已拒绝联系" : c.opted_out_elsewhere ? " · 已在连锁内其他机构拒绝联系，本机构也不再发送" : ""}`),
    el("p", {}, `标签：${c.tags.join("、") || "无"}　备注：${c.notes || "无"}`),
    el("h4", {}, "消费记录"),
    ordersBlock,
    el("h4", {}, "咨询记录"),
    consultations,
    el("h4", {}, "回访"),
    revisits,
    el("h4", {}, "相似客户（同机构，按做过的项目、买过的产品、标签与会员等级）"),
    similar,
    el("button", { type: "button", onclick: () => (box.hidden = true) }, "关闭"),
  );
  box.hidden = false;
  // Above the list: opened from far down a long list, it is brought into view.
  box.scrollIntoView({ block: "start" });
}

/// The customers most like this one, as a table whose rows open them; a note when vector
/// search is off, busy or not filled yet.
async function similarCustomers(inst, code) {
  let page;
  try {
    page = await api(`/api/v1/customers/${encodeURIComponent(inst)}/${encodeURIComponent(code)}/similar?limit=5`);
  } catch (e) {
    return el("p", { id: "customer-similar" }, `相似客户暂不可用：${e.message}`);
  }
  if (!page.items.length) return el("p", { id: "customer-similar", class: "hint" }, "暂无相似客户（向量库尚未同步时为空）");
  // The strongest reasons first, each with its share of the score (as `revisit similar` says it).
  const why = (s) => {
    const total = s.reasons.reduce((sum, r) => sum + r.weight, 0);
    if (!s.reasons.length || total <= 0) return "文字描述相近（没有共同的项目、产品、医生或标签）";
    const shown = s.reasons.slice(0, 3).map((r) => `${r.text}（${Math.round((r.weight / total) * 100)}%）`);
    if (s.reasons.length > 3) shown.push(`等 ${s.reasons.length} 项`);
    return shown.join("；");
  };
  return el(
    "table",
    { id: "customer-similar" },
    el("thead", {}, el("tr", {}, ...["客户", "相似度", "相同之处"].map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      ...page.items.map((s) =>
        el(
          "tr",
          { class: "clickable", onclick: () => showCustomer(inst, s.code).catch(showError) },
          ...[`${s.code} ${s.name}`, s.score.toFixed(2), why(s)].map((v) => el("td", {}, v)),
        ),
      ),
    ),
  );
}

// ---- jobs --------------------------------------------------------------------------------

// ---- tasks --------------------------------------------------------------------------------

async function loadTasks() {
  const params = new URLSearchParams({ limit: "200", status: $("#tasks-all").checked ? "all" : "open" });
  const inst = institution();
  if (inst) params.set("institution", inst);
  const list = await api(`/api/v1/tasks?${params}`);
  const tbody = $("#tasks-table tbody");
  tbody.replaceChildren(
    ...list.items.map((t) => {
      const actions = el("td");
      if (t.status === "open") {
        actions.append(el("button", { type: "button", class: "task-done", onclick: () => finishTask(t.id) }, "已处理"));
      }
      return el(
        "tr",
        { class: `task-${t.status}`, "data-task": String(t.id) },
        el("td", {}, String(t.id)),
        el("td", {}, t.institution),
        el("td", {}, `${t.customer_code} ${t.name}`),
        el("td", { class: "note" }, t.note),
        el("td", { class: "status" }, t.status === "open" ? "待处理" : "已处理"),
        el("td", {}, when(t.created_at)),
        el("td", {}, t.done_note || (t.done_by ? `（${t.done_by}）` : "")),
        actions,
      );
    }),
  );
  $("#tasks-empty").hidden = list.items.length > 0;
}

async function finishTask(id) {
  clearError();
  const note = prompt("处理结果（可留空）：");
  if (note === null) return;
  const body = note.trim() ? { note: note.trim() } : {};
  await api(`/api/v1/tasks/${id}/done`, { method: "POST", body }).catch(showError);
  await loadTasks();
}

// ---- queues (admin) -----------------------------------------------------------------------

const ageText = (secs) => (secs <= 0 ? "—" : secs < 60 ? `${Math.round(secs)} 秒` : secs < 3600 ? `${Math.round(secs / 60)} 分钟` : `${(secs / 3600).toFixed(1)} 小时`);
const QUEUE_COLORS = ["#c2185b", "#1976d2", "#388e3c", "#f57c00", "#7b1fa2", "#0097a7", "#5d4037", "#455a64", "#afb42b", "#e64a19", "#303f9f", "#00796b", "#c62828", "#6d4c41", "#512da8"];

async function loadQueues() {
  if (state.me.role !== "admin") return;
  const r = await api("/api/v1/queues");
  const tbody = $("#queues-table tbody");
  tbody.replaceChildren(
    ...r.queues.map((q) => {
      const action = q.paused
        ? el("button", { type: "button", onclick: () => queueAction(q.kind, "resume") }, "恢复")
        : el("button", { type: "button", onclick: () => queueAction(q.kind, "pause") }, "暂停");
      const status = q.paused ? `已暂停${q.paused_reason ? `（${q.paused_reason}）` : ""}` : "运行中";
      return el(
        "tr",
        { class: q.paused ? "paused" : "", "data-queue": q.kind },
        el("td", {}, q.kind),
        el("td", {}, String(q.waiting)),
        el("td", {}, String(q.scheduled)),
        el("td", {}, String(q.running)),
        el("td", { class: q.dead ? "error-text" : "" }, String(q.dead)),
        el("td", {}, ageText(q.oldest_waiting_secs)),
        el("td", {}, `${q.completed_last_hour} / ${q.failed_last_hour}`),
        el("td", { class: "queue-status" }, status),
        el("td", {}, action),
      );
    }),
  );
  // The last hour, minute by minute: one line per queue that did something.
  const now = Math.floor(Date.now() / 60000) * 60;
  const minutes = Array.from({ length: 60 }, (_, i) => now - (59 - i) * 60);
  const labels = minutes.map((m) => new Date(m * 1000).toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false }));
  const active = [...new Set(r.minutes.map((m) => m.queue))];
  const series = (field) =>
    active.map((queue, i) => {
      const byMinute = new Map(r.minutes.filter((m) => m.queue === queue).map((m) => [m.minute, m[field]]));
      const kind = (r.queues.find((q) => q.queue === queue) || { kind: queue }).kind;
      const color = QUEUE_COLORS[i % QUEUE_COLORS.length];
      return { label: kind, data: minutes.map((m) => byMinute.get(m) || 0), borderColor: color, backgroundColor: color, pointRadius: 0 };
    });
  const options = { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } };
  chart("chart-queue-throughput", { type: "line", data: { labels, datasets: series("completed") }, options });
  chart("chart-queue-depth", { type: "line", data: { labels, datasets: series("waiting") }, options });
}

async function queueAction(kind, action) {
  clearError();
  let body;
  if (action === "pause") {
    const reason = prompt(`暂停队列 ${kind}：请写下原因（如“短信网关故障”），其他管理员会看到`, "");
    if (reason === null) return;
    body = reason.trim() ? { reason: reason.trim() } : {};
  }
  await api(`/api/v1/queues/${encodeURIComponent(kind)}/${action}`, { method: "POST", body }).catch(showError);
  await loadQueues();
}

async function loadJobs() {
  if (state.me.role !== "admin") return;
  await loadQueues();
  const params = new URLSearchParams({ limit: "200" });
  const s = $("#jobs-state").value;
  if (s) params.set("state", s);
  const list = await api(`/api/v1/jobs?${params}`);
  const failed = list.counts.filter((c) => c.state === "failed").reduce((n, c) => n + c.count, 0);
  const stateNames = { pending: "等待", running: "执行中", done: "完成", failed: "失败" };
  $("#jobs-counts").textContent = `失败 ${failed} 个；` + list.counts.map((c) => `${c.kind} ${stateNames[c.state] || c.state} ${c.count}`).join("，");
  const tbody = $("#jobs-table tbody");
  tbody.replaceChildren(
    ...list.items.map((j) => {
      const actions = el("td");
      if (j.state === "failed") actions.append(el("button", { type: "button", onclick: () => jobAction(j.id, "retry") }, "重试"));
      if (j.state === "pending") actions.append(el("button", { type: "button", onclick: () => jobAction(j.id, "cancel") }, "取消"));
      return el("tr", {}, el("td", { class: "mono" }, j.id), el("td", {}, j.kind), el("td", {}, stateNames[j.state] || j.state), el("td", {}, `${j.attempts}/${j.max_attempts}`), el("td", {}, when(j.done_at || j.run_at)), el("td", { class: "error-text" }, j.last_error || ""), actions);
    }),
  );
}

async function jobAction(id, action) {
  clearError();
  await api(`/api/v1/jobs/${id}/${action}`, { method: "POST" }).catch(showError);
  await loadJobs();
}

// ---- dashboard ---------------------------------------------------------------------------

function chart(id, config) {
  if (state.charts[id]) state.charts[id].destroy();
  state.charts[id] = new Chart(document.getElementById(id), config);
}

async function loadDashboard() {
  const params = new URLSearchParams();
  const inst = institution();
  if (inst) params.set("institution", inst);
  const r = await api(`/api/v1/analytics/dashboard?${params}`);
  const d = r.dashboard;
  $("#dashboard-source").textContent = `截至 ${d.as_of}，数据来源：${r.source_label}`;
  const revenue = d.revenue_by_month.reduce((n, m) => n + m.revenue_cents, 0);
  $("#dashboard-cards").replaceChildren(
    ...[
      ["客户", d.customers.toLocaleString("zh-CN")],
      ["90 天内到店", d.active_customers.toLocaleString("zh-CN")],
      ["12 个月营收（元）", yuan(revenue)],
      ["近 30 天已发送祝福", String(d.funnel.sent)],
    ].map(([k, v]) => el("div", { class: "stat" }, el("div", { class: "label" }, k), el("div", { class: "value" }, v))),
  );
  chart("chart-revenue", {
    type: "line",
    data: { labels: d.revenue_by_month.map((m) => m.month), datasets: [{ label: "营收（元）", data: d.revenue_by_month.map((m) => m.revenue_cents / 100), borderColor: "#c2185b" }] },
    options: { animation: false, plugins: { legend: { display: false } } },
  });
  const f = d.funnel;
  chart("chart-funnel", {
    type: "bar",
    data: { labels: ["扫描", "已生成", "已发送", "失败", "拒绝联系"], datasets: [{ data: [f.scanned, f.generated, f.sent, f.failed, f.opted_out], backgroundColor: ["#90caf9", "#64b5f6", "#43a047", "#e53935", "#9e9e9e"] }] },
    options: { animation: false, plugins: { legend: { display: false } } },
  });
  for (const [id, items] of [["chart-projects", d.top_projects], ["chart-products", d.top_products]]) {
    chart(id, {
      type: "bar",
      data: { labels: items.map((i) => i.name), datasets: [{ data: items.map((i) => i.revenue_cents / 100), backgroundColor: "#f48fb1" }] },
      options: { indexAxis: "y", animation: false, plugins: { legend: { display: false } } },
    });
  }
  if (d.institutions.length) {
    fillTable("#dashboard-institutions", d.institutions.map((i) => [`${i.code} ${i.name}`, String(i.customers), String(i.active_customers), yuan(i.revenue_cents), String(i.funnel.sent), String(i.funnel.failed)]));
  } else {
    $("#dashboard-institutions").hidden = true;
  }
}

// ---- wiring ------------------------------------------------------------------------------

function on(sel, event, handler) {
  $(sel).addEventListener(event, (ev) => Promise.resolve(handler(ev)).catch(showError));
}

document.addEventListener("DOMContentLoaded", () => {
  on("#login-form", "submit", (ev) => {
    ev.preventDefault();
    return login($("#token").value.trim());
  });
  on("#logout", "click", () => logout());
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  on("#institution", "change", () => showTab(document.querySelector("#tabs button.active").dataset.tab));
  on("#check-run", "click", loadCheck);
  on("#init-form", "submit", runInit);
  on("#import-form", "submit", importOne);
  on("#import-folder-form", "submit", importFolder);
  on("#birthday-list", "click", listUpcoming);
  on("#birthday-form", "submit", runBirthday);
  on("#revisit-status", "change", loadRevisits);
  on("#revisit-refresh", "click", loadRevisits);
  on("#customer-search", "submit", (ev) => {
    ev.preventDefault();
    return loadCustomers(false);
  });
  on("#customer-more", "click", () => loadCustomers(true));
  on("#jobs-state", "change", loadJobs);
  on("#tasks-refresh", "click", loadTasks);
  on("#tasks-all", "change", loadTasks);
  on("#jobs-refresh", "click", loadJobs);
  on("#queues-refresh", "click", loadQueues);
  // The queue page follows the queues while it is open.
  setInterval(() => {
    const active = document.querySelector("#tabs button.active");
    if (state.me && active && active.dataset.tab === "jobs" && !document.hidden) loadQueues().catch(showError);
  }, 10000);
  on("#dashboard-refresh", "click", loadDashboard);
  if (state.token) login(state.token);
});
