// The header's warning: channels whose latest delivery failed, shown on every view (admin keys only,
// as only they may read channels), so a failing channel is never silent.
import { $, api } from "./plot.js";
import { state } from "./state.js";

const EVERY_MS = 5 * 60_000; // the header asks at most this often; the Channels view on every load
let checkedAt = 0;
let checkedKey = null;

/** Whether a delivery attempt reached its receiver (a 2xx answer). */
export const delivered = (n) => /^HTTP 2\d\d\b/.test(n.result || "");

/** For each channel id, its newest notification that has been attempted (the log is newest first). */
export function latestAttempts(notifications) {
  const out = new Map();
  for (const n of notifications) if (n.attempts > 0 && !out.has(n.channel)) out.set(n.channel, n);
  return out;
}

/** The channels whose latest attempted delivery failed. */
export function failingChannels(channels, notifications) {
  const latest = latestAttempts(notifications);
  return channels.filter((c) => latest.has(c.id) && !delivered(latest.get(c.id)));
}

/** Shows (or hides) the warning in the header and the dot on the Channels link. */
export function showFailing(failing) {
  const a = $("failing");
  a.hidden = !failing.length;
  $("nav-dot").hidden = !failing.length;
  a.textContent =
    failing.length === 1 ? `⚠ Channel “${failing[0].name || failing[0].id}” is failing` : `⚠ ${failing.length} channels are failing`;
  a.title = `The latest delivery to ${failing.map((c) => c.name || c.id).join(", ")} failed. Open Channels for the log.`;
}

/** Looks at the channels when the key may (at most every 5 min unless forced, or when the key changed). */
export async function checkChannels(force = false) {
  if (state.admin !== true) return showFailing([]);
  if (!force && checkedKey === state.key && Date.now() - checkedAt < EVERY_MS) return;
  checkedAt = Date.now();
  checkedKey = state.key;
  try {
    const [c, n] = await Promise.all([api("/api/v1/channels", state.key), api("/api/v1/notifications", state.key)]);
    showFailing(failingChannels(c.channels, n.notifications));
  } catch {
    // The views say what went wrong; the header keeps what it last knew.
  }
}
