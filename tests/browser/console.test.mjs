// The staff console in a real browser: Debian's Chromium (CHROMIUM_PATH, default
// /usr/bin/chromium) driven by playwright-core. Run by tests/integration/browser.rs, which
// starts the API and the workers on a fresh database and passes:
//   BASE_URL, ADMIN_TOKEN, STAFF_TOKEN (BJ-HA-001), OTHER_TOKEN (SH-ML-002), SCREENSHOTS (a folder).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--lang=zh-CN"],
  });
});

after(async () => {
  await browser?.close();
});

async function loggedIn(token) {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, locale: "zh-CN" });
  // A prompt (a queue's pause reason) gets a reason; a confirmation is accepted.
  page.on("dialog", (d) => (d.type() === "prompt" ? d.accept("短信网关故障") : d.accept()));
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + "/");
  await page.fill("#token", token);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#main:not([hidden])");
  page.errors = errors;
  return page;
}

async function tab(page, name, file) {
  await page.click(`#tabs button[data-tab=${name}]`);
  await page.waitForSelector(`#tab-${name}:not([hidden])`);
  if (file) {
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${shots}/${file}`, fullPage: true });
  }
}

const statusOf = (page, text) =>
  page.locator("#revisit-table tbody tr").filter({ has: page.locator("td.status", { hasText: text }) });

test("a bad token is refused at log-in", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/");
  await page.fill("#token", "rv_not_a_token");
  await page.click("#login-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0);
  assert.match(await page.textContent("#login-error"), /令牌无效/);
  assert.equal(await page.isVisible("#main"), false);
  await page.close();
});

test("staff log in, check the system, run a test-mode birthday revisit and see the messages", async () => {
  const page = await loggedIn(process.env.STAFF_TOKEN);
  assert.match(await page.textContent("#who-text"), /员工 · BJ-HA-001/);
  await page.waitForSelector("#check-table tbody tr");
  const marks = await page.locator("#check-table tbody tr td:first-child").allTextContents();
  // Text badges, not emoji (which show as empty boxes without an emoji font).
  assert.ok(marks.includes("正常"), marks.join(" "));
  assert.ok(marks.every((m) => ["正常", "异常", "未启用"].includes(m)), marks.join(" "));
  // Staff see their tabs only, and which clock the times are on.
  for (const admin of ["init", "jobs"]) {
    assert.equal(await page.isVisible(`#tabs button[data-tab=${admin}]`), false, admin);
  }
  assert.match(await page.textContent("#tz-note"), /Asia\/Shanghai/);
  await page.screenshot({ path: `${shots}/1-system-check.png`, fullPage: true });

  await tab(page, "birthday");
  assert.equal(await page.isChecked("#birthday-test"), true, "test mode is on by default");
  await page.click("#birthday-list");
  await page.waitForSelector("#upcoming-table tbody tr");
  assert.equal(await page.locator("#upcoming-table tbody tr").count(), 2);
  await page.click("#birthday-run");
  await statusOf(page, "测试·未发送").nth(1).waitFor({ timeout: 30000 });
  const messages = await page.locator("#revisit-table tbody tr td.message").allTextContents();
  assert.ok(messages.some((m) => m.includes("生日快乐")), messages.join(" | "));
  await page.waitForFunction(() => /完成/.test(document.querySelector("#birthday-status").textContent), null, { timeout: 30000 });
  await page.screenshot({ path: `${shots}/4-birthday-revisit.png`, fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("a real run's failed send is retried from the console and then sent", async () => {
  // Staff run only test mode: the switch is not theirs.
  const staff = await loggedIn(process.env.STAFF_TOKEN);
  await tab(staff, "birthday");
  assert.equal(await staff.isVisible("#birthday-test"), false);
  await staff.close();
  // A real run is an admin's, for one institution.
  const page = await loggedIn(process.env.ADMIN_TOKEN);
  await page.selectOption("#institution", "BJ-HA-001");
  await tab(page, "birthday");
  await page.uncheck("#birthday-test");
  await page.click("#birthday-run"); // confirms "正式模式会真的给客户发送消息" (accepted)
  const failed = statusOf(page, "失败");
  await failed.first().waitFor({ timeout: 30000 });
  await page.waitForFunction(() => /完成/.test(document.querySelector("#birthday-status").textContent), null, { timeout: 30000 });
  assert.match(await failed.first().locator("td.reason").textContent(), /503/);
  await failed.first().locator("button.retry").click();
  // The retry runs in a worker: refresh until it is sent.
  for (let i = 0; i < 30 && (await statusOf(page, "失败").count()) > 0; i++) {
    await page.waitForTimeout(500);
    await page.click("#revisit-refresh");
  }
  assert.equal(await statusOf(page, "失败").count(), 0);
  assert.equal(await statusOf(page, "已发送").count(), 2, "both real greetings sent, each once");
  // Sent after a retry: the earlier try's error is no longer shown.
  const reasons = await statusOf(page, "已发送").locator("td.reason").allTextContents();
  assert.deepEqual(reasons, ["", ""]);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("staff import a file and see the rejected record named", async () => {
  const page = await loggedIn(process.env.STAFF_TOKEN);
  await tab(page, "import");
  const file = JSON.stringify([
    { customer_code: "BJ-HA-001-C9001", person: { name: "新客户", gender: "女", birthday: "1995-04-01", phone: "13600136000" } },
    { customer_code: "BJ-HA-001-C9002", person: { name: "错日期", gender: "女", birthday: "1995-02-30", phone: "13600136001" } },
  ]);
  await page.selectOption("#import-kind", "customers");
  await page.setInputFiles("#import-file", { name: "customers.json", mimeType: "application/json", buffer: Buffer.from(file) });
  await page.click("#import-form button[type=submit]");
  await page.waitForSelector("#import-results tbody tr", { timeout: 30000 });
  const cells = await page.locator("#import-results tbody tr td").allTextContents();
  assert.deepEqual(cells.slice(1), ["2", "1", "0", "0", "1"]);
  const err = await page.textContent("#import-errors");
  assert.match(err, /第 2 条（BJ-HA-001-C9002） 字段 person\.birthday/);
  await page.screenshot({ path: `${shots}/3-import.png`, fullPage: true });
  await page.close();
});

test("admin tabs: initialise, customers, jobs and the dashboard with charts", async () => {
  const page = await loggedIn(process.env.ADMIN_TOKEN);
  assert.match(await page.textContent("#who-text"), /管理员/);
  await tab(page, "init");
  await page.check("#init-skip-ch");
  await page.click("#init-form button[type=submit]");
  await page.waitForSelector("#init-table tbody tr");
  await page.screenshot({ path: `${shots}/2-initialise.png`, fullPage: true });

  await page.selectOption("#institution", "BJ-HA-001");
  await tab(page, "customers");
  await page.waitForSelector("#customer-table tbody tr");
  const phones = await page.locator("#customer-table tbody tr td:nth-child(3)").allTextContents();
  assert.ok(phones.length > 0 && phones.every((p) => p.includes("****")), phones.join(" "));
  await page.locator("#customer-table tbody tr").first().click();
  await page.waitForSelector("#customer-detail:not([hidden])");
  // Customers like this one, from vector search, each row opening that customer.
  await page.waitForSelector("#customer-similar tbody tr");
  const similar = await page.locator("#customer-similar tbody tr td:first-child").allTextContents();
  // Code and name, as staff know their customers.
  assert.ok(similar.length > 0 && similar.every((c) => /^BJ-HA-001-\S+ \S+$/.test(c)), similar.join(" "));
  // Each says why, in staff's words, with each reason's share: 都做过 水光针（31%）；……
  const why = await page.locator("#customer-similar tbody tr td:nth-child(3)").allTextContents();
  assert.ok(why.every((w) => /^[都同].+（\d+%）/.test(w)), why.join(" | "));
  // The detail opens above the list, in view.
  const detail = await page.locator("#customer-detail").boundingBox();
  const list = await page.locator("#customer-table").boundingBox();
  assert.ok(detail.y < list.y, `${detail.y} < ${list.y}`);
  await page.screenshot({ path: `${shots}/5-customers.png`, fullPage: true });

  await page.selectOption("#institution", "");
  await tab(page, "jobs");
  await page.selectOption("#jobs-state", "");
  await page.waitForSelector("#jobs-table tbody tr");
  await page.screenshot({ path: `${shots}/6-jobs.png`, fullPage: true });

  await tab(page, "dashboard");
  await page.waitForSelector("#dashboard-cards .stat");
  await page.waitForFunction(() => window.Chart && Chart.getChart("chart-revenue"));
  assert.match(await page.textContent("#dashboard-source"), /数据来源/);
  assert.ok(await page.isVisible("#dashboard-institutions"), "the chain's view lists its institutions");
  await page.screenshot({ path: `${shots}/7-dashboard.png`, fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("admin watch the queues on a chart, pause one and resume it", async () => {
  const page = await loggedIn(process.env.ADMIN_TOKEN);
  await tab(page, "jobs");
  const row = page.locator('#queues-table tbody tr[data-queue="message.send"]');
  await row.waitFor();
  assert.match(await row.locator("td.queue-status").textContent(), /运行中/);
  // The greetings the earlier tests sent show on the last hour's chart (workers write their
  // activity every second in this test).
  await page.waitForFunction(
    async () => {
      document.querySelector("#queues-refresh").click();
      await new Promise((r) => setTimeout(r, 300));
      const c = window.Chart && Chart.getChart("chart-queue-throughput");
      return c && c.data.datasets.some((d) => d.label === "message.send" && d.data.some((n) => n > 0));
    },
    null,
    { timeout: 30000, polling: 1000 },
  );
  const completed = await row.locator("td:nth-child(7)").textContent();
  assert.match(completed, /^[1-9]\d* \/ \d+$/, completed);

  await row.locator("button", { hasText: "暂停" }).click();
  await page.waitForFunction(() => /已暂停（短信网关故障）/.test(document.querySelector('#queues-table tr[data-queue="message.send"] td.queue-status').textContent));
  assert.ok(await row.evaluate((tr) => tr.classList.contains("paused")));
  await page.screenshot({ path: `${shots}/6b-queues.png`, fullPage: true });
  await row.locator("button", { hasText: "恢复" }).click();
  await page.waitForFunction(() => /运行中/.test(document.querySelector('#queues-table tr[data-queue="message.send"] td.queue-status').textContent));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("staff see the task a low score opened and close it", async () => {
  const page = await loggedIn(process.env.STAFF_TOKEN);
  await tab(page, "tasks");
  await page.waitForSelector("#tasks-table tbody tr");
  const rows = page.locator("#tasks-table tbody tr");
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().locator("td.note").textContent(), /打了 1 分/);
  assert.match(await rows.first().textContent(), /BJ-HA-001-C1 张\*/);
  await page.screenshot({ path: `${shots}/8-tasks.png`, fullPage: true });
  await rows.first().locator("button.task-done").click(); // the prompt is accepted empty
  await page.waitForFunction(() => document.querySelectorAll("#tasks-table tbody tr").length === 0);
  await page.check("#tasks-all");
  await page.waitForSelector("#tasks-table tbody tr.task-done");
  assert.match(await page.locator("#tasks-table tbody tr td.status").first().textContent(), /已处理/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("a staff user cannot see another institution", async () => {
  const page = await loggedIn(process.env.OTHER_TOKEN);
  const options = await page.locator("#institution option").allTextContents();
  assert.deepEqual(options.map((o) => o.split(" ")[0]), ["SH-ML-002"]);
  await tab(page, "customers");
  await page.waitForSelector("#customer-table tbody tr");
  const codes = await page.locator("#customer-table tbody tr td:first-child").allTextContents();
  assert.ok(codes.length > 0 && codes.every((c) => c.startsWith("SH-ML-002")), codes.join(" "));
  // Asking the API for BJ's data with this token, from the page itself, is refused.
  const answer = await page.evaluate(async (token) => {
    const r = await fetch("/api/v1/customers/BJ-HA-001", { headers: { Authorization: `Bearer ${token}` } });
    return { status: r.status, body: await r.text() };
  }, process.env.OTHER_TOKEN);
  assert.equal(answer.status, 403);
  assert.doesNotMatch(answer.body, /BJ-HA-001-C/);
  await tab(page, "birthday");
  await page.waitForTimeout(500);
  const rows = await page.locator("#revisit-table tbody tr").allTextContents();
  assert.ok(rows.every((r) => !r.includes("BJ-HA-001")), rows.join(" | "));
  await tab(page, "tasks");
  await page.waitForTimeout(300);
  assert.equal(await page.locator("#tasks-table tbody tr").count(), 0, "BJ's task is not SH's");
  await page.close();
});
