// The Channels view (admin keys only): each channel with whether its latest delivery worked and a
// Test button, and the delivery log of the newest 100 notifications with every attempt.
import { $, api, ApiError, explain, fmtFull } from "./plot.js";
import { state, setAdmin, startLoad, isNewest } from "./state.js";
import { showOnly } from "./route.js";
import { failed } from "./key.js";
import { delivered, latestAttempts, failingChannels, showFailing } from "./nav.js";
import { pill, rel, timeEl, el } from "./ops.js";

const tested = new Map(); // channel id -> { ok, text }: the last Test result, kept across redraws
const unfolded = new Set(); // ids of notifications whose attempts are shown, kept across redraws

export function drawChannelsView() {
  showOnly("channels");
  $("forget").hidden = false;
  document.title = "Channels · pushplot";
  loadChannels();
}

/** On a refresh: a key known not to be an admin's is not asked again (the view already says why). */
export function refreshChannels() {
  if (state.admin !== false) loadChannels();
}

export async function loadChannels() {
  const n = startLoad();
  let channels, notes;
  try {
    [channels, notes] = await Promise.all([api("/api/v1/channels", state.key), api("/api/v1/notifications", state.key)]);
  } catch (e) {
    if (!isNewest(n)) return;
    if (e instanceof ApiError && e.status === 403) {
      setAdmin(false);
      return denied(e);
    }
    if (failed(e, "channels")) return;
    $("channels-error").textContent = explain(e);
    $("channels-error").hidden = false;
    return;
  }
  if (!isNewest(n)) return;
  setAdmin(true);
  $("banner").hidden = true;
  $("channels-error").hidden = true;
  $("channels-denied").hidden = true;
  drawChannels(channels.channels, notes.notifications);
}

function denied(e) {
  $("banner").hidden = true;
  $("channels-denied").hidden = false;
  $("channels-denied-why").textContent = `The key in this browser may not read channels (403 forbidden: ${e.message}).`;
  for (const id of ["channels-list", "log"]) $(id).replaceChildren();
  for (const id of ["channels-empty", "log-head", "log-empty", "channels-error"]) $(id).hidden = true;
  $("channels-count").textContent = "";
}

function drawChannels(channels, notes) {
  const failing = failingChannels(channels, notes);
  showFailing(failing);
  const latest = latestAttempts(notes);
  const sorted = [...channels].sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
  $("channels-list").replaceChildren(...sorted.map((c) => channelCard(c, latest.get(c.id), failing.includes(c))));
  $("channels-empty").hidden = channels.length > 0;
  $("channels-curl").textContent = `curl -X POST ${location.origin}/api/v1/channels -H "X-API-Key: $ADMIN_TOKEN" -d '{"type":"slack","url":"https://hooks.slack.com/services/...","name":"ops"}'`;
  $("channels-count").textContent = [
    `${channels.length} channel${channels.length === 1 ? "" : "s"}`,
    ...(failing.length ? [`${failing.length} failing`] : []),
  ].join(" · ");
  const names = new Map(channels.map((c) => [c.id, c]));
  $("log-head").hidden = false;
  $("log-count").textContent = notes.length ? `(newest ${notes.length})` : "";
  $("log-empty").hidden = notes.length > 0;
  $("log").replaceChildren(...notes.map((x) => logItem(x, names.get(x.channel))));
}

function channelCard(c, last, failing) {
  const card = el("article", `rule channel${failing ? " alarm" : ""}`);
  card.dataset.id = c.id;
  const head = el("div", "rule-head");
  const button = el("button", "test", "Test");
  button.type = "button";
  button.title = "Send a test message to this channel now";
  button.addEventListener("click", () => test(c, button));
  head.append(pill(failing ? "failing" : last ? "ok" : "unused"), el("h3", "name", c.name || c.id), el("span", "chip", c.type), button);
  const meta = el("p", "meta muted");
  meta.append(`added ${rel(c.created_at)} · `);
  if (last) {
    meta.append("latest delivery ", timeEl(last.log.length ? last.log[last.log.length - 1].at : last.created_at), ": ");
    meta.append(el("span", failing ? "error" : "", last.result));
  } else meta.append("nothing sent yet");
  card.append(head, el("p", "url mono", c.url), meta);
  const t = tested.get(c.id);
  if (t) card.append(el("p", `test-result ${t.ok ? "good" : "error"}`, t.text));
  return card;
}

async function test(c, button) {
  button.disabled = true;
  button.textContent = "Sending…";
  try {
    const r = await api(`/api/v1/channels/${encodeURIComponent(c.id)}/test`, state.key, "POST");
    tested.set(c.id, { ok: true, text: `Test delivered: ${r.result}` });
  } catch (e) {
    // 502: the channel was tried and failed; the answer says how.
    const result = e instanceof ApiError && e.body && e.body.result;
    tested.set(c.id, { ok: false, text: result ? `Test failed: ${result}` : explain(e) });
  }
  await loadChannels();
}

/** What a notification was about: "backup: up → down", or the test message. */
function eventText(ev) {
  if (!ev) return "?";
  if (ev.name === "pushplot test") return "test message";
  return `${ev.kind && ev.kind !== "job" ? `${ev.kind} ` : ""}${ev.name}: ${ev.from} → ${ev.to}`;
}

/** delivered, retrying (failed, another attempt planned), failed (given up) or pending (also when
 * delayed past the minute's limit). */
function outcome(x) {
  if (!x.attempts) return "pending";
  if (delivered(x)) return "delivered";
  return x.next_attempt != null ? "retrying" : "failed";
}

function logItem(x, channel) {
  const o = outcome(x);
  const li = el("li", `note ${o}`);
  const head = el("div", "note-head");
  head.append(pill(o), el("span", "what", eventText(x.event)), el("span", "muted", `to ${channel ? channel.name || channel.id : `deleted channel ${x.channel}`}`), timeEl(x.created_at));
  const res = el("div", "note-result");
  const said = x.attempts || /^delayed/.test(x.result || "") ? x.result : "not sent yet";
  res.append(el("span", o === "delivered" ? "" : o === "pending" ? "muted" : "error", said));
  res.append(el("span", "muted", ` · ${x.attempts} attempt${x.attempts === 1 ? "" : "s"}`));
  if (x.next_attempt != null) res.append(el("span", "muted", ` · next attempt ${rel(x.next_attempt)}`));
  li.append(head, res);
  if (x.log && x.log.length > 1) {
    const d = el("details", "attempts");
    d.open = unfolded.has(x.id);
    d.addEventListener("toggle", () => (d.open ? unfolded.add(x.id) : unfolded.delete(x.id)));
    d.append(el("summary", null, `every attempt (${x.log.length})`));
    const ol = el("ol");
    for (const a of x.log) ol.append(el("li", null, `${fmtFull(a.at)}: ${a.result}`));
    d.append(ol);
    li.append(d);
  }
  return li;
}
