// The dashboard's entry: draws the view the URL names, refreshes it every 30 s, and loads the other modules.
import { $ } from "./plot.js";
import { state } from "./state.js";
import { route, onRoute, showOnly } from "./route.js";
import { askKey } from "./key.js";
import { loadOverview, drawOverview } from "./overview.js";
import { drawDetail, loadChart } from "./detail.js";
import { drawJobsView, loadJobs, drawJobView, loadJob } from "./jobs.js";
import { drawAlertsView, loadAlerts } from "./alerts.js";
import { drawChannelsView, refreshChannels } from "./channels.js";
import { checkChannels } from "./nav.js";
import "./embed-dialog.js";

const REFRESH_MS = 30_000;

function render() {
  $("banner").hidden = true;
  if (!state.key) return askKey();
  const st = route();
  if (st.view !== "channels") checkChannels();
  if (st.view === "chart") return drawDetail(st);
  if (st.view === "jobs") return drawJobsView();
  if (st.view === "job") return drawJobView(st);
  if (st.view === "alerts") return drawAlertsView(st);
  if (st.view === "channels") return drawChannelsView();
  document.title = "pushplot";
  if ($("filter").value !== st.q) $("filter").value = st.q;
  if (state.list && state.withSpark) drawOverview();
  else showOnly("overview");
  loadOverview();
}

function refresh() {
  if (!state.key || document.hidden || !$("login").hidden) return;
  const st = route();
  if (st.view !== "channels") checkChannels();
  if (st.view === "overview") loadOverview();
  else if (st.view === "jobs") loadJobs();
  else if (st.view === "job") loadJob(st.job);
  else if (st.view === "alerts") loadAlerts(st);
  else if (st.view === "channels") refreshChannels();
  else if (st.range !== "custom") loadChart(st);
}

// For tests and the bench: the detail chart (once drawn) and a refresh on demand.
window.__pushplot = { chart: null, refresh };
onRoute(render);
setInterval(refresh, REFRESH_MS);
document.addEventListener("visibilitychange", () => document.hidden || refresh());
render();
