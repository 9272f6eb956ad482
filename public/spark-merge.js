// Incremental refreshes of the chart list: which `since` to ask for, and merging an answer that
// holds only each sparkline's buckets from `since` on into the list already shown.

/** Sparkline length the overview asks for. */
export const SPARK = 48;
/** Every this many refreshes, one asks for everything again (points sent late into old buckets). */
export const FULL_EVERY = 10;

const key = (s) => `${s.chart}\u0000${JSON.stringify(Object.entries(s.labels || {}).sort())}`;

/**
 * The `since` of the next refresh: a bucket that was still filling at the last answer must be
 * sent again, so it goes back the largest bucket size, plus a minute for clocks that disagree.
 */
export function nextSince(list, nowSecs) {
  const widest = list.reduce((w, s) => Math.max(w, s.bucket_seconds || 60), 60);
  return Math.floor(nowSecs) - widest - 60;
}

/**
 * The full list as it stands after an answer with `since`: each series takes the answer's fields,
 * and its sparkline is the old one's buckets before `since` followed by the answer's, the newest
 * SPARK kept. Series missing from the answer are gone; new ones come as they are.
 */
export function mergeSince(old, fresh, since) {
  const before = new Map(old.map((s) => [key(s), s]));
  return fresh.map((s) => {
    const o = before.get(key(s));
    if (!o || !o.spark || !s.spark) return s;
    const spark = o.spark.filter((p) => p.ts < since).concat(s.spark).slice(-SPARK);
    return { ...s, spark };
  });
}
