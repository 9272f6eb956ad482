// The dashboard's shared state: the key, the last chart list, the series shown, the newest load.
const STORE = "pushplot.key";
const ADMIN_STORE = "pushplot.admin";

/** Whether a key may manage channels: true for the admin token (it is not a `pp_` key), else what
 * the Channels view learned (stored), else null: unknown, so admin-only routes are not asked. */
function adminOf(key) {
  if (!key) return null;
  if (!key.startsWith("pp_")) return true;
  const v = localStorage.getItem(ADMIN_STORE);
  return v === "1" ? true : v === "0" ? false : null;
}

export const state = {
  key: localStorage.getItem(STORE) || "",
  admin: null,
  list: null, // the last /api/v1/charts answer
  withSpark: false, // whether that answer holds sparklines (the detail view asks without)
  series: null, // the series the detail view shows: an entry of the list
};
state.admin = adminOf(state.key);

/** Remembers a key in this browser (or forgets it, for ""); the list it read goes with it. */
export function setKey(key) {
  state.key = key;
  state.list = null;
  localStorage.removeItem(ADMIN_STORE);
  state.admin = adminOf(key);
  if (key) localStorage.setItem(STORE, key);
  else localStorage.removeItem(STORE);
}

/** Remembers what an admin-only route answered for this key (200: true, 403: false). */
export function setAdmin(yes) {
  state.admin = yes;
  localStorage.setItem(ADMIN_STORE, yes ? "1" : "0");
}

/** The series (label sets) of one chart in the list. */
export const seriesOf = (chart) => (state.list || []).filter((s) => s.chart === chart);

// Every load takes a number; an answer is drawn only if no later load started meanwhile.
let loads = 0;
export const startLoad = () => ++loads;
export const isNewest = (n) => n === loads;
