// The dashboard's shared state: the key, the last chart list, the series shown, the newest load.
const STORE = "pushplot.key";

export const state = {
  key: localStorage.getItem(STORE) || "",
  list: null, // the last /api/v1/charts answer
  withSpark: false, // whether that answer holds sparklines (the detail view asks without)
  series: null, // the series the detail view shows: an entry of the list
};

/** Remembers a key in this browser (or forgets it, for ""); the list it read goes with it. */
export function setKey(key) {
  state.key = key;
  state.list = null;
  if (key) localStorage.setItem(STORE, key);
  else localStorage.removeItem(STORE);
}

/** The series (label sets) of one chart in the list. */
export const seriesOf = (chart) => (state.list || []).filter((s) => s.chart === chart);

// Every load takes a number; an answer is drawn only if no later load started meanwhile.
let loads = 0;
export const startLoad = () => ++loads;
export const isNewest = (n) => n === loads;
