// wxnotify console: a GraphQL IDE and an operations dashboard in plain
// JavaScript. Everything it fetches comes from this server's own origin
// (the page's Content-Security-Policy enforces that), so it works offline,
// on intranets and where public CDNs are blocked.
"use strict";

/* ---------- i18n ---------- */

const TEXT = {
  en: {
    "tab.ide": "GraphQL IDE", "tab.dashboard": "Dashboard",
    "login.open": "Log in", "login.out": "Log out", "login.title": "Log in",
    "login.tokenHelp": "Paste a bearer token (mint one with `wxnotify token --role admin`):",
    "login.use": "Use token",
    "login.codeHelp": "Or log in as a mini-program user with a wx.login code (loginWithWechatMiniApp):",
    "login.code": "Log in with code", "close": "Close",
    "login.bad": "This is not a JWT (three dot-separated parts): paste the whole token.",
    "login.done": "Logged in as {role}.", "login.failed": "Login failed: {msg}",
    "who.anonymous": "anonymous", "who.role": "{role}{sub}, expires {exp}", "who.expired": "token expired: log in again",
    "examples": "Examples", "history": "History", "clear": "Clear",
    "run": "Run (Ctrl+Enter)", "prettify": "Prettify", "explorer": "Schema explorer",
    "variables": "Variables", "headers": "Request headers", "bearer": "Bearer token",
    "adminSecret": "Admin secret (X-Hasura-Admin-Secret)", "extraHeaders": "More headers (JSON object)",
    "result": "Result", "running": "running…",
    "caret": "line {line}, column {col}", "caret.match": "; matching bracket at line {line}, column {col}",
    "caret.unmatched": "; this bracket has no partner",
    "bad.variables": "Variables are not a JSON object: {msg}. Fix them or clear the box.",
    "bad.headers": "More headers are not a JSON object of strings: {msg}.",
    "network": "The server did not answer ({msg}). Is it running? Check its log.",
    "search": "Search fields and types", "explorer.loading": "Reading the schema…",
    "explorer.failed": "The schema could not be read: {msg}",
    "explorer.count": "{n} matches", "explorer.args": "arguments", "explorer.back": "← all root fields",
    "explorer.query": "Queries", "explorer.mutation": "Mutations", "explorer.types": "Types",
    "window": "Window", "channel": "Channel", "all": "all",
    "dash.needAdmin": "The dashboard is for admins. Log in with an admin token (`wxnotify token --role admin`) to see it.",
    "dash.failed": "The statistics could not be read: {msg}", "dash.updated": "updated {time}, refreshes every 5 s",
    "d.linking": "Linking", "d.outbox": "Outbox backlog", "d.tokens": "Access tokens",
    "d.deliveries": "Deliveries over time", "d.recent": "Latest deliveries", "d.failures": "Failures by errcode",
    "d.jobs": "Scheduled jobs", "d.runs": "Last job runs", "d.syncs": "Last follower syncs",
    "l.accounts": "Accounts", "l.with_unionid": "with unionid", "l.linked": "linked to a follower",
    "l.followers": "Followers", "l.followers_with_unionid": "followers with unionid", "l.coverage": "linked / accounts",
    "o.pending": "PENDING", "o.sending": "SENDING", "o.oldest": "oldest waiting since",
    "t.appid": "appid", "t.expires": "expires in", "t.refreshed": "refreshed at", "t.by": "refreshed by", "t.none": "No token fetched yet.",
    "t.expired": "expired",
    "f.errcode": "errcode", "f.count": "count", "f.errmsg": "WeChat said", "f.meaning": "meaning", "f.todo": "what to do",
    "f.none": "No failed deliveries.", "f.unknown": "Not in the console's list: look the code up in WeChat's global errcode table.",
    "j.job": "job", "j.cron": "cron", "j.type": "type", "j.next": "next fire", "j.last": "last fire", "j.lastRun": "last run",
    "j.paused": "paused", "j.none": "No scheduled jobs.",
    "r.when": "scheduled for", "r.status": "status", "r.error": "error", "r.none": "No runs yet.",
    "s.at": "finished", "s.source": "started by", "s.followers": "followers", "s.matched": "matched",
    "s.updated": "updated", "s.cleared": "cleared", "s.unmatched": "unmatched", "s.calls": "API calls", "s.ms": "duration",
    "s.none": "No sync yet. Run `mutation { syncFollowers { followers } }` in the IDE.",
    "s.request": "request",
    "dl.id": "id", "dl.created": "created", "dl.status": "status", "dl.channel": "channel", "dl.touser": "to",
    "dl.errcode": "errcode", "dl.none": "No deliveries yet.",
    "chart.none": "No deliveries in this window.", "chart.total": "total",
  },
  zh: {
    "tab.ide": "GraphQL 调试", "tab.dashboard": "运行看板",
    "login.open": "登录", "login.out": "退出", "login.title": "登录",
    "login.tokenHelp": "粘贴 Bearer 令牌（用 `wxnotify token --role admin` 生成）：",
    "login.use": "使用令牌",
    "login.codeHelp": "或用小程序 wx.login 的 code 以用户身份登录（loginWithWechatMiniApp）：",
    "login.code": "用 code 登录", "close": "关闭",
    "login.bad": "这不是 JWT（应为三段以点分隔的文本）：请粘贴完整令牌。",
    "login.done": "已登录，角色 {role}。", "login.failed": "登录失败：{msg}",
    "who.anonymous": "匿名", "who.role": "{role}{sub}，{exp} 过期", "who.expired": "令牌已过期：请重新登录",
    "examples": "示例", "history": "历史", "clear": "清空",
    "run": "运行（Ctrl+Enter）", "prettify": "格式化", "explorer": "Schema 浏览",
    "variables": "变量", "headers": "请求头", "bearer": "Bearer 令牌",
    "adminSecret": "管理密钥（X-Hasura-Admin-Secret）", "extraHeaders": "其他请求头（JSON 对象）",
    "result": "结果", "running": "运行中…",
    "caret": "第 {line} 行，第 {col} 列", "caret.match": "；配对括号在第 {line} 行第 {col} 列",
    "caret.unmatched": "；这个括号没有配对",
    "bad.variables": "变量不是 JSON 对象：{msg}。请修正或清空。",
    "bad.headers": "其他请求头不是字符串值的 JSON 对象：{msg}。",
    "network": "服务器没有响应（{msg}）。它在运行吗？请查看服务器日志。",
    "search": "搜索字段和类型", "explorer.loading": "正在读取 schema…",
    "explorer.failed": "无法读取 schema：{msg}",
    "explorer.count": "{n} 个匹配", "explorer.args": "参数", "explorer.back": "← 全部根字段",
    "explorer.query": "查询", "explorer.mutation": "变更", "explorer.types": "类型",
    "window": "时间范围", "channel": "渠道", "all": "全部",
    "dash.needAdmin": "运行看板仅限管理员。请用管理员令牌登录（`wxnotify token --role admin`）。",
    "dash.failed": "无法读取统计数据：{msg}", "dash.updated": "更新于 {time}，每 5 秒刷新",
    "d.linking": "账号关联", "d.outbox": "待发队列", "d.tokens": "access_token 状态",
    "d.deliveries": "发送趋势", "d.recent": "最近发送", "d.failures": "按 errcode 统计的失败",
    "d.jobs": "定时任务", "d.runs": "最近任务运行", "d.syncs": "最近粉丝同步",
    "l.accounts": "账号数", "l.with_unionid": "有 unionid", "l.linked": "已关联粉丝",
    "l.followers": "粉丝数", "l.followers_with_unionid": "有 unionid 的粉丝", "l.coverage": "关联率",
    "o.pending": "待发送 PENDING", "o.sending": "发送中 SENDING", "o.oldest": "最早等待自",
    "t.appid": "appid", "t.expires": "剩余有效期", "t.refreshed": "刷新时间", "t.by": "刷新者", "t.none": "尚未获取令牌。",
    "t.expired": "已过期",
    "f.errcode": "errcode", "f.count": "次数", "f.errmsg": "微信返回", "f.meaning": "含义", "f.todo": "处理建议",
    "f.none": "没有发送失败。", "f.unknown": "不在控制台列表中：请查微信全局返回码表。",
    "j.job": "任务", "j.cron": "cron", "j.type": "类型", "j.next": "下次触发", "j.last": "上次触发", "j.lastRun": "上次运行",
    "j.paused": "已暂停", "j.none": "没有定时任务。",
    "r.when": "计划时间", "r.status": "状态", "r.error": "错误", "r.none": "还没有运行记录。",
    "s.at": "完成时间", "s.source": "发起方", "s.followers": "粉丝", "s.matched": "已匹配",
    "s.updated": "更新", "s.cleared": "清除", "s.unmatched": "未匹配", "s.calls": "接口调用", "s.ms": "耗时",
    "s.none": "还没有同步。可在调试页运行 `mutation { syncFollowers { followers } }`。",
    "s.request": "手动请求",
    "dl.id": "id", "dl.created": "创建时间", "dl.status": "状态", "dl.channel": "渠道", "dl.touser": "接收者",
    "dl.errcode": "errcode", "dl.none": "还没有发送记录。",
    "chart.none": "此时间范围内没有发送。", "chart.total": "合计",
  },
};

// WeChat's common errcodes: what each means and what to do (see docs/wechat.md).
const ERRCODES = {
  "-1": { zh: ["系统繁忙", "稍后重试；持续出现时查看微信公众平台公告。"],
          en: ["WeChat is busy (system error)", "Retry later; if it persists, check WeChat's announcements."] },
  "40001": { zh: ["AppSecret 错误，或 access_token 无效/不是最新", "检查 WXNOTIFY_OA_SECRET；确认没有其他系统也在刷新同一 appid 的令牌（它会让本服务的令牌失效），或改用 WXNOTIFY_WECHAT_STABLE_TOKEN。"],
             en: ["AppSecret wrong, or access_token invalid / not the latest", "Check WXNOTIFY_OA_SECRET; make sure no other system refreshes this appid's token (that invalidates ours), or set WXNOTIFY_WECHAT_STABLE_TOKEN."] },
  "40003": { zh: ["不合法的 OpenID", "该 openid 不属于这个公众号（常见：把小程序 openid 当成公众号 openid）；重新同步粉丝后再发。"],
             en: ["Invalid openid", "The openid does not belong to this service account (often a mini-program openid used by mistake); sync followers and retry."] },
  "40013": { zh: ["不合法的 AppID", "检查 WXNOTIFY_OA_APPID / WXNOTIFY_MP_APPID，注意大小写和空格。"],
             en: ["Invalid appid", "Check WXNOTIFY_OA_APPID / WXNOTIFY_MP_APPID for typos, case and spaces."] },
  "40014": { zh: ["不合法的 access_token", "令牌过期或不属于该账号；服务会重新获取，持续出现时检查 appid 与 secret 是否配对。"],
             en: ["Invalid access_token", "Expired or for another account; the server fetches a new one; if it persists, check that appid and secret belong together."] },
  "40037": { zh: ["不合法的模板 ID", "在公众平台“模板消息”中核对 template_id，确认模板仍在本账号的模板库中。"],
             en: ["Invalid template_id", "Check the template_id under Template Messages in the MP admin; the template must still be in this account's library."] },
  "40164": { zh: ["调用接口的 IP 不在白名单中", "在公众平台“开发 > 基本配置 > IP 白名单”中加入本服务器的出口 IP。"],
             en: ["Caller IP not in the IP whitelist", "Add this server's outbound IP under Development > Basic configuration > IP whitelist in the MP admin."] },
  "41001": { zh: ["缺少 access_token 参数", "检查 WeChat API 地址（WXNOTIFY_WECHAT_API_BASE）和代理是否改写了请求。"],
             en: ["access_token missing", "Check WXNOTIFY_WECHAT_API_BASE and any proxy that rewrites requests."] },
  "42001": { zh: ["access_token 已过期", "服务会自动刷新；频繁出现时检查服务器时钟。"],
             en: ["access_token expired", "The server refreshes it; if frequent, check the server clock."] },
  "43004": { zh: ["需要接收者关注公众号", "该用户已取消关注：模板消息发不出去，用小程序订阅消息补发，或引导用户关注。"],
             en: ["The receiver must follow the service account", "The user unfollowed: template messages cannot reach them; fall back to a mini-program subscribe message or ask them to follow."] },
  "43101": { zh: ["用户拒绝接受消息", "订阅消息：用户没有订阅该模板或一次性订阅已用完，请用户在小程序里再次订阅；模板消息：用户拒收了这个模板，只有用户本人能在公众号设置里恢复，不要重发。"],
             en: ["The user refused the message", "Subscribe message: no subscription for this template, or the one-time credit is used up; ask the user to subscribe again. Template message: the user turned this template off; only they can turn it back on, do not resend."] },
  "45009": { zh: ["接口调用超过每日限额", "等待次日重置，或在公众平台查看/清零 quota（clear_quota）；减少调用次数。"],
             en: ["Daily API quota reached", "Wait for the daily reset, or check/clear the quota (clear_quota) in the MP admin; call less often."] },
  "45011": { zh: ["API 调用太频繁", "降低频率，下一分钟再试（可调小 WXNOTIFY_WECHAT_CONCURRENCY）。"],
             en: ["API called too often (minute quota)", "Slow down and retry next minute (lower WXNOTIFY_WECHAT_CONCURRENCY)."] },
  "45047": { zh: ["客服消息下发条数超过上限", "用户发消息后 48 小时内最多回复 20 条：改用模板消息，或等待用户再次互动。"],
             en: ["Customer-service message limit reached", "At most 20 replies within 48 hours of the user's last message: send a template message instead, or wait for the user to write again."] },
  "47003": { zh: ["模板参数不准确（为空或不符合规则）", "按模板要求检查 data 的键名和值（类型、长度，如 thing 类 ≤20 字）；看 errmsg 里点名的字段。"],
             en: ["Template data invalid (empty or breaking the rules)", "Check data's keys and values against the template (type, length, e.g. thing ≤ 20 characters); errmsg names the field."] },
  "48001": { zh: ["接口未授权", "账号没有该接口权限（如未认证的订阅号）：在公众平台确认接口权限。"],
             en: ["API unauthorized", "The account lacks this API (e.g. not verified): check interface permissions in the MP admin."] },
};

const store = {
  get(key, fallback) { try { const v = localStorage.getItem("wxnotify." + key); return v === null ? fallback : v; } catch (_) { return fallback; } },
  set(key, value) { try { localStorage.setItem("wxnotify." + key, value); } catch (_) { /* private mode: not kept */ } },
  remove(key) { try { localStorage.removeItem("wxnotify." + key); } catch (_) { /* nothing kept */ } },
};

const $ = (id) => document.getElementById(id);
let lang = pickLanguage();

function pickLanguage() {
  const saved = store.get("lang", "");
  if (saved) return saved.startsWith("zh") ? "zh" : "en";
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages[0] : navigator.language || "en";
  return String(wanted).toLowerCase().startsWith("zh") ? "zh" : "en";
}

function t(key, vars) {
  const text = (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? String(vars[k]) : ""));
}

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = lang === "zh" ? "wxnotify 控制台" : "wxnotify console";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $("lang").value = lang === "zh" ? "zh-CN" : "en";
  showWho();
  renderExamples();
  renderHistory();
  renderExplorer();
  if (lastStats) renderDashboard(lastStats);
}

/* ---------- DOM helpers ---------- */

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v; // CSSOM: allowed by the page's CSP, unlike a style attribute
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) =>
      c && c.num !== undefined ? el("td", { class: "num" }, c.num) : el("td", {}, c))))));
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

function duration(seconds) {
  const s = Math.abs(Math.round(seconds));
  const text = s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
  return seconds < 0 ? `${t("t.expired")} (${text})` : text;
}

/* ---------- who is calling ---------- */

function token() { return store.get("token", ""); }

function claims(jwt) {
  const part = (jwt || "").split(".")[1];
  if (!part) return null;
  try {
    const json = decodeURIComponent(escape(atob(part.replace(/-/g, "+").replace(/_/g, "/"))));
    return JSON.parse(json);
  } catch (_) { return null; }
}

function currentRole() {
  const c = claims(token());
  if (!c) return store.get("adminSecret", "") ? "admin" : "anonymous";
  if (c.exp && c.exp * 1000 < Date.now()) return "expired";
  return c.role || "anonymous";
}

function showWho() {
  const c = claims(token());
  const role = currentRole();
  let text = t("who.anonymous");
  if (role === "expired") text = t("who.expired");
  else if (c) text = t("who.role", { role: c.role, sub: c.sub ? ` #${c.sub}` : "", exp: when(new Date(c.exp * 1000).toISOString()) });
  else if (role === "admin") text = "admin (X-Hasura-Admin-Secret)";
  $("who").textContent = text;
  $("who").dataset.role = role;
  $("logout").hidden = !token();
}

function setToken(value) {
  if (value) store.set("token", value); else store.remove("token");
  $("token").value = value || "";
  showWho();
  loadSchema();
  if (currentView === "dashboard") refreshDashboard();
}

function wireLogin() {
  $("login-open").addEventListener("click", () => { $("login").hidden = !$("login").hidden; $("login-message").textContent = ""; });
  $("login-close").addEventListener("click", () => { $("login").hidden = true; });
  $("logout").addEventListener("click", () => setToken(""));
  $("login-token-use").addEventListener("click", () => {
    const value = $("login-token").value.trim().replace(/^Bearer\s+/i, "");
    if (!claims(value)) return loginMessage(t("login.bad"), false);
    setToken(value);
    loginMessage(t("login.done", { role: currentRole() }), true);
  });
  $("login-code-use").addEventListener("click", loginWithCode);
}

async function loginWithCode() {
  const code = $("login-code").value.trim();
  const query = "mutation login($code: String!) { loginWithWechatMiniApp(code: $code) { account { id } jwt { token expires_at } } }";
  try {
    const answer = await post({ query, variables: { code } }, {});
    const jwt = answer.body && answer.body.data && answer.body.data.loginWithWechatMiniApp;
    if (!jwt) return loginMessage(t("login.failed", { msg: errorText(answer.body) }), false);
    setToken(jwt.jwt.token);
    loginMessage(t("login.done", { role: currentRole() }), true);
  } catch (e) {
    loginMessage(t("network", { msg: e.message }), false);
  }
}

function loginMessage(text, ok) {
  $("login-message").textContent = text;
  $("login-message").className = ok ? "message ok" : "message";
}

function errorText(body) {
  const errors = body && body.errors;
  return errors && errors.length ? errors.map((e) => e.message).join("; ") : JSON.stringify(body);
}

/* ---------- requests ---------- */

function requestHeaders() {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const secret = store.get("adminSecret", "");
  if (secret) headers["X-Hasura-Admin-Secret"] = secret;
  return headers;
}

async function post(body, extra) {
  const response = await fetch("/api/graphql", {
    method: "POST", headers: Object.assign(requestHeaders(), extra), body: JSON.stringify(body), credentials: "same-origin",
  });
  const text = await response.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch (_) { parsed = { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] }; }
  return { status: response.status, body: parsed };
}

/* ---------- the editor ---------- */

const PAIRS = { "(": ")", "[": "]", "{": "}", '"': '"' };
const CLOSERS = { ")": "(", "]": "[", "}": "{" };
const KEYWORDS = new Set(["query", "mutation", "subscription", "fragment", "on", "true", "false", "null"]);

function escapeHtml(s) { return s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]); }

// Token spans of a GraphQL document: [start, end, class].
function tokens(src) {
  const out = [];
  const re = /("""[\s\S]*?(?:"""|$)|"(?:[^"\\\n]|\\.)*"?)|(#[^\n]*)|(\$[_A-Za-z]\w*)|(@[_A-Za-z]\w*)|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([_A-Za-z]\w*)/g;
  let m;
  while ((m = re.exec(src))) {
    const cls = m[1] ? "tk-str" : m[2] ? "tk-com" : m[3] ? "tk-var" : m[4] ? "tk-dir" : m[5] ? "tk-num" : KEYWORDS.has(m[6]) ? "tk-kw" : "";
    if (cls) out.push([m.index, m.index + m[0].length, cls]);
  }
  return out;
}

// Offsets inside strings or comments, where brackets do not count.
function inertRanges(src) { return tokens(src).filter((tk) => tk[2] === "tk-str" || tk[2] === "tk-com"); }

function isInert(ranges, i) { return ranges.some(([a, b]) => i >= a && i < b); }

// The partner of the bracket at `i`, -1 when it has none, null when `i` is no bracket.
function partner(src, i, ranges) {
  const c = src[i];
  if (!c || isInert(ranges, i)) return null;
  const forward = "([{".includes(c);
  if (!forward && !CLOSERS[c]) return null;
  const open = forward ? c : CLOSERS[c];
  const close = forward ? PAIRS[c] : c;
  let depth = 0;
  for (let j = i; forward ? j < src.length : j >= 0; j += forward ? 1 : -1) {
    if (isInert(ranges, j)) continue;
    if (src[j] === open) depth += forward ? 1 : -1;
    else if (src[j] === close) depth += forward ? -1 : 1;
    if (depth === 0) return j;
  }
  return -1;
}

function bracketAtCaret(src, caret, ranges) {
  for (const i of [caret - 1, caret]) {
    const p = partner(src, i, ranges);
    if (p !== null) return [i, p];
  }
  return null;
}

function position(src, i) {
  const before = src.slice(0, i).split("\n");
  return { line: before.length, col: before[before.length - 1].length + 1 };
}

function highlight() {
  const area = $("query");
  const src = area.value;
  const ranges = inertRanges(src);
  const marks = new Map();
  const pair = bracketAtCaret(src, area.selectionStart, ranges);
  let status = t("caret", position(src, area.selectionStart));
  if (pair) {
    const [at, p] = pair;
    marks.set(at, p < 0 ? "tk-bad" : "tk-match");
    if (p >= 0) { marks.set(p, "tk-match"); status += t("caret.match", position(src, p)); } else status += t("caret.unmatched");
  }
  $("caret").textContent = status;
  let html = "";
  let i = 0;
  const emit = (end, cls) => {
    while (i < end) {
      const next = [...marks.keys()].filter((k) => k >= i && k < end).sort((a, b) => a - b)[0];
      const stop = next === undefined ? end : next;
      if (stop > i) html += wrap(src.slice(i, stop), cls);
      if (next !== undefined) { html += `<span class="${marks.get(next)}">${wrap(src[next], cls)}</span>`; i = next + 1; } else i = stop;
    }
  };
  const wrap = (text, cls) => (cls ? `<span class="${cls}">${escapeHtml(text)}</span>` : escapeHtml(text));
  for (const [a, b, cls] of tokens(src)) { emit(a, ""); emit(b, cls); }
  emit(src.length, "");
  $("query-view").innerHTML = html + "\n";
  syncScroll();
}

function syncScroll() {
  $("query-view").scrollTop = $("query").scrollTop;
  $("query-view").scrollLeft = $("query").scrollLeft;
}

function replaceSelection(area, text, caretOffset) {
  const { selectionStart: s, selectionEnd: e, value } = area;
  area.value = value.slice(0, s) + text + value.slice(e);
  area.selectionStart = area.selectionEnd = s + (caretOffset === undefined ? text.length : caretOffset);
}

function onEditorKey(ev) {
  const area = ev.target;
  const { selectionStart: s, selectionEnd: e, value } = area;
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") { ev.preventDefault(); run(); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const next = value[s];
  if (ev.key in PAIRS && !(ev.key === '"' && next === '"')) {
    ev.preventDefault();
    const inner = value.slice(s, e);
    replaceSelection(area, ev.key + inner + PAIRS[ev.key], 1 + inner.length);
  } else if ((CLOSERS[ev.key] || ev.key === '"') && next === ev.key && s === e) {
    ev.preventDefault(); // step over the closer typed earlier
    area.selectionStart = area.selectionEnd = s + 1;
  } else if (ev.key === "Backspace" && s === e && s > 0 && PAIRS[value[s - 1]] === next) {
    ev.preventDefault();
    area.value = value.slice(0, s - 1) + value.slice(s + 1);
    area.selectionStart = area.selectionEnd = s - 1;
  } else if (ev.key === "Tab") {
    ev.preventDefault();
    replaceSelection(area, "  ");
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    const line = value.slice(value.lastIndexOf("\n", s - 1) + 1, s);
    const indent = line.match(/^\s*/)[0];
    const opens = "{([".includes(value[s - 1]);
    if (opens && CLOSERS[next]) replaceSelection(area, `\n${indent}  \n${indent}`, indent.length + 3);
    else replaceSelection(area, "\n" + indent + (opens ? "  " : ""));
  } else return;
  area.dispatchEvent(new Event("input"));
}

// One selection per line, indented by nesting; arguments stay inline.
function prettify() {
  const src = $("query").value;
  const inert = new Map(tokens(src).filter((tk) => tk[2] === "tk-str" || tk[2] === "tk-com").map((tk) => [tk[0], tk]));
  let out = "", depth = 0, parens = 0, i = 0;
  const pad = () => "  ".repeat(depth);
  const nextChar = (from) => { const m = src.slice(from).match(/[^\s,]/); return m ? m[0] : ""; };
  while (i < src.length) {
    const tk = inert.get(i);
    if (tk) {
      out += src.slice(tk[0], tk[1]) + (tk[2] === "tk-com" ? "\n" + pad() : "");
      i = tk[1];
      continue;
    }
    const c = src[i++];
    if (c === "{" && parens === 0) { depth++; out = out.trimEnd() + " {\n" + pad(); }
    else if (c === "}" && parens === 0) { depth = Math.max(0, depth - 1); out = out.trimEnd() + "\n" + pad() + "}\n" + pad(); }
    else if (c === "(" || c === "[") { parens++; out += c; }
    else if (c === ")" || c === "]") { parens = Math.max(0, parens - 1); out = out.trimEnd() + c; }
    else if (/[\s,]/.test(c)) {
      if (/[\s(\[{]$/.test(out) || out === "") continue;
      const n = nextChar(i), p = out[out.length - 1];
      const inline = parens > 0 || depth === 0 || p === ":" || ":({@}".includes(n) || /(^|\s)(on|\.\.\.)$/.test(out);
      out += inline ? (parens > 0 && c === "," ? ", " : " ") : "\n" + pad();
      if (parens > 0 && c !== ",") out = out.replace(/, $/, ", ");
    } else {
      if (c === ":") { out += ": "; while (/\s/.test(src[i] || "")) i++; continue; }
      out += c;
    }
  }
  $("query").value = out.replace(/[ \t]+\n/g, "\n").replace(/\n\s*\n/g, "\n").trim() + "\n";
  highlight();
}

/* ---------- running ---------- */

// The operation under the caret when the document holds several.
function operationName(src, caret) {
  const ranges = inertRanges(src);
  const ops = [];
  let depth = 0, start = 0;
  for (let i = 0; i < src.length; i++) {
    if (isInert(ranges, i)) continue;
    if (src[i] === "{") { if (depth === 0 && ops.length === 0 && start === 0) start = 0; depth++; }
    else if (src[i] === "}") { depth--; if (depth === 0) { ops.push([start, i + 1]); start = i + 1; } }
  }
  if (ops.length < 2) return undefined;
  const [a] = ops.find(([x, y]) => caret >= x && caret <= y) || ops[0];
  const head = src.slice(a).replace(/^(\s|#[^\n]*)*/, "");
  const m = head.match(/^(?:query|mutation|subscription)\s+([_A-Za-z]\w*)/);
  return m ? m[1] : undefined;
}

function parseObject(text, errorKey) {
  if (!text.trim()) return {};
  let value;
  try { value = JSON.parse(text); } catch (e) { throw new Error(t(errorKey, { msg: e.message })); }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error(t(errorKey, { msg: "not an object" }));
  return value;
}

async function run() {
  const query = $("query").value;
  const result = $("result");
  let variables, extra;
  try {
    variables = parseObject($("variables").value, "bad.variables");
    extra = parseObject($("extra-headers").value, "bad.headers");
  } catch (e) {
    result.textContent = e.message;
    result.className = "code result error";
    return;
  }
  const body = { query, variables };
  const op = operationName(query, $("query").selectionStart);
  if (op) body.operationName = op;
  $("result-status").textContent = t("running");
  const started = performance.now();
  try {
    const answer = await post(body, extra);
    const ms = Math.round(performance.now() - started);
    result.textContent = JSON.stringify(answer.body, null, 2);
    result.className = answer.body.errors ? "code result error" : "code result";
    result.dataset.done = String(Date.now());
    $("result-status").textContent = `HTTP ${answer.status} · ${ms} ms`;
    remember(query, $("variables").value, op);
  } catch (e) {
    result.textContent = t("network", { msg: e.message });
    result.className = "code result error";
    $("result-status").textContent = "";
  }
}

/* ---------- history and examples ---------- */

const HISTORY_KEPT = 50;

function savedHistory() {
  try { return JSON.parse(store.get("history", "[]")) || []; } catch (_) { return []; }
}

function remember(query, variables, op) {
  const items = savedHistory().filter((h) => h.query !== query || h.variables !== variables);
  items.unshift({ query, variables, op: op || firstName(query), at: new Date().toISOString() });
  store.set("history", JSON.stringify(items.slice(0, HISTORY_KEPT)));
  renderHistory();
}

function firstName(query) {
  const m = query.replace(/#[^\n]*/g, "").match(/(query|mutation|subscription)\s+([_A-Za-z]\w*)/);
  if (m) return m[2];
  const field = query.replace(/#[^\n]*/g, "").match(/\{\s*([_A-Za-z]\w*)/);
  return field ? field[1] : "query";
}

function load(query, variables) {
  const area = $("query");
  area.value = query;
  $("variables").value = variables || "";
  store.set("query", query);
  store.set("variables", variables || "");
  area.setSelectionRange(0, 0);
  area.scrollTop = area.scrollLeft = 0;
  highlight();
}

function renderHistory() {
  const list = $("history");
  list.replaceChildren(...savedHistory().map((h) =>
    el("li", { title: h.query, onclick: () => load(h.query, h.variables) }, h.op, el("small", {}, when(h.at)))));
}

// The Zion seed's own documents, verbatim, and the demo walk-through's.
const EXAMPLES = [
  { name: "notice", zh: "通知查询（种子文档）", en: "notice query (seed)",
    query: 'query notice{ account(where:{_and:[ {oaopenid:{_is_null:false}}, {point_count:{id:{_is_null:false}}} {_or:[ {user_status:{_eq:"经纪人"}}, {user_status:{_eq:"新人"}}]} ]}){ oaopenid, chatnotice:point_count_aggregate(where:{type:{_eq:"聊天"}}){ aggregate{ count } }, nonchatnotice:point_count_aggregate(where:{type:{_eq:"投递邀约"}}){ aggregate{ count } } } }' },
  { name: "accountupdate", zh: "按 unionid 关联（update_account _contains）", en: "link by unionid (update_account _contains)",
    query: "mutation accountupdate($unionid:String,$unionobject:jsonb,$openid:String){ update_account(where:{oauth2_user_info_map:{_contains:$unionobject}},_set:{unionid:$unionid,oaopenid:$openid}){ affected_rows returning{ id unionid oaopenid } } }",
    variables: '{\n  "unionid": "uDemoUnion01",\n  "unionobject": { "WECHAT": { "unionId": "uDemoUnion01" } },\n  "openid": "oDemoFollower01"\n}' },
  { name: "getcache", zh: "读取 token 缓存（getcache）", en: "read the token cache (getcache)",
    query: "query getcache{ actok{ tok expiredtime } } " },
  { name: "jj", zh: "添加定时任务（addScheduledJob）", en: "add a scheduled job (addScheduledJob)",
    query: 'mutation jj { addScheduledJob( schemaExId: "Ywng9oV59KX" input: { shouldRecover: true description: "定时获取订单在ERP中的信息" triggerConfigs: [ { triggerType: "cron" name: "updateOrderShippingStatus" group: "updateOrderShippingStatus" cron: "0 */1 * * *" } ] name: "updateOrderShippingStatus" group: "updateOrderShippingStatus" durable: true dataMap: { actionFlowUuid: "03664ed6-1a92-4cb1-bb36-cb7c022c22f5" inputs: {} versionId: 3 } jobType: ACTION_FLOW } ) { name } }' },
  { name: "login", zh: "小程序登录（演示 code）", en: "mini-program login (demo code)",
    query: 'mutation { loginWithWechatMiniApp(code: "demo-code-1") { account { id unionid oaopenid } jwt { token } } }' },
  { name: "syncFollowers", zh: "同步粉丝", en: "sync followers",
    query: "mutation { syncFollowers { followers matched updated cleared unmatched api_calls duration_ms } }" },
  { name: "sendTemplateMessage", zh: "发送模板消息", en: "send a template message",
    query: 'mutation {\n  sendTemplateMessage(input: { touser: "oDemoFollower01", template_id: "demo-template",\n    data: { thing1: { value: "Hello from the demo" } } }) { errcode errmsg msgid delivery_id }\n}' },
  { name: "deliveries", zh: "账号与发送记录", en: "accounts and deliveries",
    query: "{ account { id unionid oaopenid } delivery { status touser msgid } }" },
];

function renderExamples() {
  $("examples").replaceChildren(...EXAMPLES.map((x) =>
    el("li", { title: x.query, dataset: { example: x.name }, onclick: () => load(x.query, x.variables) }, x[lang] || x.en)));
}

/* ---------- schema explorer ---------- */

const INTROSPECTION = `query IntrospectionQuery { __schema { queryType { name } mutationType { name }
  types { kind name description
    fields(includeDeprecated: true) { name description args { name description type { ...T } defaultValue } type { ...T } }
    inputFields { name description type { ...T } }
    enumValues(includeDeprecated: true) { name description } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }`;

let schema = null;
let schemaError = "";
let explorerType = null;

async function loadSchema() {
  schema = null;
  schemaError = "";
  renderExplorer();
  try {
    const answer = await post({ query: INTROSPECTION, operationName: "IntrospectionQuery" }, {});
    if (!answer.body.data) throw new Error(errorText(answer.body));
    schema = answer.body.data.__schema;
  } catch (e) {
    schemaError = e.message;
  }
  renderExplorer();
}

function typeName(type) {
  if (!type) return "";
  if (type.kind === "NON_NULL") return typeName(type.ofType) + "!";
  if (type.kind === "LIST") return "[" + typeName(type.ofType) + "]";
  return type.name;
}

function baseName(type) { return type && type.ofType ? baseName(type.ofType) : type && type.name; }

function typeLink(type) {
  const name = baseName(type);
  return el("span", { class: "ex-type", onclick: () => { explorerType = name; renderExplorer(); } }, typeName(type));
}

function fieldRow(field, root) {
  return el("div", { class: "ex-field", dataset: { name: field.name, root: root || "" } },
    el("span", { class: "name" }, field.name),
    field.args && field.args.length
      ? el("div", { class: "args" }, "(", field.args.map((a, i) => [i ? ", " : "", a.name, ": ", typeLink(a.type)]), ")")
      : null,
    field.type ? el("div", { class: "type" }, "→ ", typeLink(field.type)) : null,
    field.description ? el("div", { class: "desc" }, field.description) : null);
}

function matches(needle, ...texts) { return !needle || texts.some((x) => x && x.toLowerCase().includes(needle)); }

function renderExplorer() {
  const body = $("explorer-body");
  const status = $("explorer-status");
  if (!body) return;
  if (!schema) { status.textContent = schemaError ? t("explorer.failed", { msg: schemaError }) : t("explorer.loading"); body.replaceChildren(); return; }
  const needle = $("explorer-search").value.trim().toLowerCase();
  const byName = new Map(schema.types.map((x) => [x.name, x]));
  if (explorerType && byName.has(explorerType) && !needle) return renderType(byName.get(explorerType), body, status);
  const sections = [];
  let n = 0;
  for (const [key, root] of [["explorer.query", schema.queryType], ["explorer.mutation", schema.mutationType]]) {
    const type = root && byName.get(root.name);
    if (!type) continue;
    const fields = type.fields.filter((f) => matches(needle, f.name, f.description));
    n += fields.length;
    sections.push(el("h4", {}, t(key)), fields.map((f) => fieldRow(f, root.name)));
  }
  if (needle) {
    const types = schema.types.filter((x) => !x.name.startsWith("__") && matches(needle, x.name, x.description));
    n += types.length;
    sections.push(el("h4", {}, t("explorer.types")),
      types.map((x) => el("div", { class: "ex-field", dataset: { type: x.name } }, typeLink({ name: x.name }), x.description ? el("div", { class: "desc" }, x.description) : null)));
  }
  status.textContent = t("explorer.count", { n });
  body.replaceChildren(...sections.flat());
}

function renderType(type, body, status) {
  status.textContent = `${type.kind} ${type.name}`;
  const rows = (type.fields || type.inputFields || []).map((f) => fieldRow(f));
  const values = (type.enumValues || []).map((v) => el("div", { class: "ex-field" }, el("span", { class: "name" }, v.name), v.description ? el("div", { class: "desc" }, v.description) : null));
  body.replaceChildren(
    el("button", { type: "button", class: "small", onclick: () => { explorerType = null; renderExplorer(); } }, t("explorer.back")),
    el("h4", {}, type.name), type.description ? el("p", { class: "desc" }, type.description) : "", ...rows, ...values);
}

/* ---------- dashboard ---------- */

const REFRESH_MS = 5000;
const STATUS_COLORS = { SENT: "#07c160", IN_REVIEW: "#7a5af8", FAILED: "#d92d20", SKIPPED: "#98a2b3", PENDING: "#f79009", SENDING: "#2e90fa" };
let lastStats = null;
let lastDeliveries = [];
let refreshing = false;

async function refreshDashboard() {
  if (refreshing) return;
  const message = $("dash-message");
  if (currentRole() !== "admin") {
    message.textContent = t("dash.needAdmin");
    message.dataset.state = "need-admin";
    $("dash").hidden = true;
    return;
  }
  refreshing = true;
  try {
    const response = await fetch(`/api/console/stats?window=${encodeURIComponent($("dash-window").value)}`, { headers: requestHeaders() });
    const stats = await response.json();
    if (response.status === 401 || response.status === 403) {
      message.textContent = t("dash.needAdmin") + " (" + errorText(stats) + ")";
      message.dataset.state = "need-admin";
      $("dash").hidden = true;
      return;
    }
    if (!response.ok) throw new Error(errorText(stats));
    const recent = await post({ query: "query consoleDeliveries { delivery(order_by: {id: desc}, limit: 10) { id created_at status channel touser errcode errmsg } }" }, {});
    lastDeliveries = (recent.body.data && recent.body.data.delivery) || [];
    lastStats = stats;
    message.textContent = "";
    message.dataset.state = "ok";
    $("dash").hidden = false;
    renderDashboard(stats);
  } catch (e) {
    message.textContent = t("dash.failed", { msg: e.message });
    message.dataset.state = "failed";
  } finally {
    refreshing = false;
  }
}

function dl(target, pairs) {
  $(target).replaceChildren(...pairs.flatMap(([key, value, name]) => [el("dt", {}, t(key)), el("dd", { dataset: { stat: name || key } }, value)]));
}

function renderDashboard(s) {
  $("dash-updated").textContent = t("dash.updated", { time: when(s.generated_at) });
  const l = s.linking || {};
  const coverage = l.accounts ? `${Math.round((100 * l.linked) / l.accounts)}%` : "—";
  dl("d-linking", [["l.accounts", l.accounts, "accounts"], ["l.with_unionid", l.with_unionid, "with_unionid"], ["l.linked", l.linked, "linked"],
    ["l.coverage", coverage, "coverage"], ["l.followers", l.followers, "followers"], ["l.followers_with_unionid", l.followers_with_unionid, "followers_with_unionid"]]);
  const o = s.outbox || {};
  dl("d-outbox", [["o.pending", o.pending, "pending"], ["o.sending", o.sending, "sending"], ["o.oldest", when(o.oldest_at), "oldest"]]);
  $("d-tokens").replaceChildren(s.tokens.length
    ? table([t("t.appid"), t("t.expires"), t("t.refreshed"), t("t.by")],
      s.tokens.map((x) => [x.appid, duration(x.expires_in_seconds), when(x.refreshed_at), x.refreshed_by || "—"]))
    : el("p", { class: "hint" }, t("t.none")));
  renderChart(s.deliveries);
  $("d-recent").replaceChildren(lastDeliveries.length
    ? table([t("dl.id"), t("dl.created"), t("dl.status"), t("dl.channel"), t("dl.touser"), t("dl.errcode")],
      lastDeliveries.map((d) => [d.id, when(d.created_at), el("span", { class: "st-" + d.status }, d.status), d.channel, d.touser, d.errcode === null ? "" : d.errcode]))
    : el("p", { class: "hint" }, t("dl.none")));
  renderFailures(s.failures);
  renderJobs(s.jobs, s.runs);
  $("d-runs").replaceChildren(s.runs.length
    ? table([t("j.job"), t("r.when"), t("r.status"), t("r.error")], s.runs.map((r) => [`${r.group}.${r.name}`, when(r.scheduled_for), el("span", { class: "st-" + r.status }, r.status), r.error || ""]))
    : el("p", { class: "hint" }, t("r.none")));
  $("d-syncs").replaceChildren(s.syncs.length
    ? table([t("s.at"), t("s.source"), t("s.followers"), t("s.matched"), t("s.updated"), t("s.cleared"), t("s.unmatched"), t("s.calls"), t("s.ms")],
      s.syncs.map((x) => [when(x.at), x.source === "request" ? t("s.request") : x.source, { num: x.followers ?? "" }, { num: x.matched ?? "" },
        { num: x.updated ?? "" }, { num: x.cleared ?? "" }, { num: x.unmatched ?? "" }, { num: x.api_calls ?? "" },
        x.error ? el("span", { class: "st-error" }, x.error) : x.duration_ms === undefined ? "" : `${x.duration_ms} ms`]))
    : el("p", { class: "hint" }, t("s.none")));
}

function renderChart(d) {
  const channelSelect = $("dash-channel");
  const channels = [...new Set(d.series.map((x) => x.channel))].sort();
  const chosen = channelSelect.value;
  channelSelect.replaceChildren(el("option", { value: "" }, t("all")), ...channels.map((c) => el("option", { value: c }, c)));
  channelSelect.value = channels.includes(chosen) ? chosen : "";
  const series = d.series.filter((x) => !channelSelect.value || x.channel === channelSelect.value);
  const statuses = [...new Set(series.map((x) => x.status))].sort();
  const totals = {};
  const stacks = Array.from({ length: d.buckets }, () => ({}));
  for (const x of series) {
    if (x.bucket < 0 || x.bucket >= d.buckets) continue;
    stacks[x.bucket][x.status] = (stacks[x.bucket][x.status] || 0) + x.count;
    totals[x.status] = (totals[x.status] || 0) + x.count;
  }
  const max = Math.max(1, ...stacks.map((b) => Object.values(b).reduce((a, c) => a + c, 0)));
  const box = $("d-chart");
  const W = Math.max(320, (box.clientWidth || 720) - 4), H = 180, left = 32, bottom = 20, top = 8;
  const barW = (W - left) / d.buckets;
  const y = (v) => H - bottom - ((H - bottom - top) * v) / max;
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", width: W, height: H });
  chart.append(svg("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: "#d7dce3" }));
  chart.append(svg("text", { x: left - 4, y: y(max) + 4, "text-anchor": "end" }, String(max)), svg("text", { x: left - 4, y: H - bottom, "text-anchor": "end" }, "0"));
  const start = new Date(d.start).getTime();
  stacks.forEach((stack, i) => {
    let base = 0;
    for (const status of statuses) {
      const v = stack[status] || 0;
      if (!v) continue;
      const rect = svg("rect", { x: left + i * barW + 1, y: y(base + v), width: Math.max(1, barW - 2), height: y(base) - y(base + v),
        fill: STATUS_COLORS[status] || "#7a5af8", "data-status": status, "data-count": v });
      rect.append(svg("title", {}, `${when(new Date(start + i * d.bucket_seconds * 1000).toISOString())} ${status}: ${v}`));
      chart.append(rect);
      base += v;
    }
    if (i % Math.ceil(d.buckets / 6) === 0) {
      const at = new Date(start + i * d.bucket_seconds * 1000);
      const label = d.bucket_seconds >= 86400 / 4 ? at.toLocaleDateString() : at.toTimeString().slice(0, 5);
      chart.append(svg("text", { x: left + i * barW, y: H - 6 }, label));
    }
  });
  box.replaceChildren(series.length ? chart : el("p", { class: "hint" }, t("chart.none")));
  $("d-legend").replaceChildren(...statuses.map((st) => el("span", {}, el("span", { class: "swatch", style: `background:${STATUS_COLORS[st] || "#7a5af8"}` }), st)));
  const sum = Object.values(totals).reduce((a, c) => a + c, 0);
  $("d-totals").replaceChildren(el("span", { dataset: { total: "all" } }, `${t("chart.total")}: ${sum}`),
    ...Object.entries(totals).map(([st, n]) => el("span", { class: "st-" + st, dataset: { total: st } }, `${st}: ${n}`)));
}

function renderFailures(failures) {
  if (!failures.length) return $("d-failures").replaceChildren(el("p", { class: "hint" }, t("f.none")));
  $("d-failures").replaceChildren(table([t("f.errcode"), t("f.count"), t("f.errmsg"), t("f.meaning"), t("f.todo")], failures.map((f) => {
    const known = ERRCODES[String(f.errcode)];
    const [meaning, todo] = known ? known[lang] : ["", t("f.unknown")];
    return [el("code", { dataset: { errcode: String(f.errcode) } }, f.errcode === null ? "—" : f.errcode), { num: f.count }, f.errmsg || "", meaning, todo];
  })));
}

function renderJobs(jobs, runs) {
  if (!jobs.length) return $("d-jobs").replaceChildren(el("p", { class: "hint" }, t("j.none")));
  $("d-jobs").replaceChildren(table([t("j.job"), t("j.cron"), t("j.type"), t("j.next"), t("j.last"), t("j.lastRun")], jobs.map((j) => {
    const run = runs.find((r) => r.group === j.group && r.name === j.name);
    const last = run ? el("span", { class: "st-" + run.status }, run.status, run.error ? `: ${run.error}` : "") : "—";
    return [`${j.group}.${j.name}`, el("code", {}, j.cron), j.job_type, j.paused ? t("j.paused") : (j.next_fire_times || []).map(when).join(" · ") || when(j.next_fire_at), when(j.last_fire_at), last];
  })));
}

/* ---------- views ---------- */

let currentView = "ide";
let timer = null;

function show(view) {
  currentView = view;
  $("view-ide").hidden = view !== "ide";
  $("view-dashboard").hidden = view !== "dashboard";
  document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  if (location.hash !== "#" + view) history_replace("#" + view);
  clearInterval(timer);
  if (view === "dashboard") { refreshDashboard(); timer = setInterval(refreshDashboard, REFRESH_MS); }
}

function history_replace(hash) { try { window.history.replaceState(null, "", hash); } catch (_) { /* file views */ } }

function start() {
  applyLanguage();
  wireLogin();
  const area = $("query");
  area.addEventListener("keydown", onEditorKey);
  for (const ev of ["input", "click", "keyup", "select"]) area.addEventListener(ev, highlight);
  area.addEventListener("scroll", syncScroll);
  area.addEventListener("input", () => store.set("query", area.value));
  $("variables").addEventListener("input", () => store.set("variables", $("variables").value));
  $("variables").addEventListener("keydown", (ev) => { if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") { ev.preventDefault(); run(); } });
  $("token").value = token();
  $("token").addEventListener("change", () => setToken($("token").value.trim().replace(/^Bearer\s+/i, "")));
  $("admin-secret").value = store.get("adminSecret", "");
  $("admin-secret").addEventListener("change", () => { const v = $("admin-secret").value; if (v) store.set("adminSecret", v); else store.remove("adminSecret"); showWho(); loadSchema(); });
  $("extra-headers").value = store.get("headers", "");
  $("extra-headers").addEventListener("input", () => store.set("headers", $("extra-headers").value));
  $("run").addEventListener("click", run);
  $("prettify").addEventListener("click", prettify);
  $("history-clear").addEventListener("click", () => { store.remove("history"); renderHistory(); });
  $("explorer-toggle").addEventListener("click", () => { $("explorer").hidden = !$("explorer").hidden; });
  $("explorer-search").addEventListener("input", () => { explorerType = null; renderExplorer(); });
  $("lang").addEventListener("change", () => { lang = $("lang").value.startsWith("zh") ? "zh" : "en"; store.set("lang", lang); applyLanguage(); });
  $("dash-window").addEventListener("change", refreshDashboard);
  $("dash-channel").addEventListener("change", () => lastStats && renderChart(lastStats.deliveries));
  document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
  load(store.get("query", EXAMPLES[0].query), store.get("variables", ""));
  loadSchema();
  show(location.hash === "#dashboard" ? "dashboard" : "ide");
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
