// Incremental refreshes of the chart list: which `since` to ask for, and merging an answer that
// holds only each sparkline's buckets from `since` on into the list already shown.
import { labelsKey } from "./plot.js";

/** Sparkline length the overview asks for. */
export const SPARK = 48;
/** One refresh in this many asks for everything again (points sent late into old buckets). */
export const FULL_EVERY = 10;

// A series as the overview's cards know it.
const key = (s) => `${s.chart}\u0000${labelsKey(s.labels)}`;

/**
 * The `since` of the next refresh, from the server's `now` in the last answer (not the browser's
 * clock): every bucket that ends after it comes again, so one still filling then is sent whole.
 * A minute earlier, for points in flight when that answer was read.
 */
export function nextSince(answer) {
  return Math.floor(answer.now) - 60;
}

/**
 * The full list as it stands after an answer with `since`: each series takes the answer's fields,
 * and its sparkline is the old one's buckets that ended by `since` (and are not older than the
 * series: a chart deleted and sent again starts afresh) followed by the answer's, the newest SPARK
 * kept. Series missing from the answer are gone; new ones, and ones whose bucket size changed,
 * come as the answer has them.
 */
export function mergeSince(old, fresh, since) {
  const before = new Map(old.map((s) => [key(s), s]));
  return fresh.map((s) => {
    const o = before.get(key(s));
    if (!o || !o.spark || !s.spark || o.bucket_seconds !== s.bucket_seconds) return s;
    const kept = o.spark.filter((p) => p.ts + s.bucket_seconds <= since && (s.first_ts == null || p.ts >= s.first_ts));
    return { ...s, spark: kept.concat(s.spark).slice(-SPARK) };
  });
}
