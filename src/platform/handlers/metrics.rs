//! The Pushgateway's API: `PUT`/`POST`/`DELETE /metrics/job/...` keep a group for the scrape and
//! chart its samples like any point; `GET /metrics` is what Prometheus scrapes.

use crate::domain::chart::check_series_per_chart;
use crate::domain::error::{ApiError, Code};
use crate::domain::expo::{self, Family, Kind, Sample};
use crate::domain::keys::{Action, Caller};
use crate::domain::names::{ChartName, Labels};
use crate::domain::push_path::Grouping;
use crate::domain::round::MAX_PARAM_BYTES;
use crate::domain::route::PushMethod;
use crate::platform::context::{Ctx, Result};
use crate::platform::db::{GroupRow, GroupWrite};
use crate::platform::handlers::ingest::judge_alerts_later;
use crate::platform::{auth, http};
use worker::Response;

/// What the scrape answers with: the text format Prometheus and the Pushgateway speak.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn push(ctx: &mut Ctx, how: PushMethod, rest: &str) -> Result<Response> {
    let caller = auth::caller(ctx).await?;
    // Refused before a byte of the body is read.
    caller.may(Action::IngestAny, false)?;
    let grouping = Grouping::parse(&format!("/metrics/{rest}"))?;
    if how != PushMethod::Delete {
        refuse_protobuf(
            ctx.header("Content-Type").as_deref(),
            ctx.header("Content-Encoding").as_deref(),
        )?;
    }
    let key = Labels::from_pairs(grouping.labels())?.canonical();
    let body = match how {
        PushMethod::Delete => Vec::new(),
        _ => ctx.body().await?,
    };
    // Pushes to one group in this isolate go one at a time, as at the Pushgateway; across
    // isolates, a push whose group changed between its read and its write stores nothing and is
    // made again on what is there now.
    let _turn = Turn::take(&key).await;
    let mut outcome = Err(ApiError::busy());
    for tried in 0..MAX_TRIES {
        if tried > 0 {
            // Apart, at random, so that pushes that raced do not race again.
            let ms = (worker::js_sys::Math::random() * 20.0 * tried as f64) as u64 + 1;
            worker::Delay::from(std::time::Duration::from_millis(ms)).await;
        }
        match apply(ctx, &caller, how, &grouping, &key, &body).await {
            Ok(None) => continue,
            Ok(Some(done)) => {
                outcome = Ok(done);
                break;
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // As at the Pushgateway, a refused change of a group shows in push_failure_time_seconds; only
    // for a key that may write every chart, since a refused body does not say whose group it is.
    if matches!(&outcome, Err(e) if e.status == 400) && caller.limit().is_none() {
        // The caller's 400 is the answer, whatever happens to this note of it.
        if let Err(e) = ctx.db.push_failed(&key, grouping.job(), ctx.now).await {
            worker::console_error!("metric group {key}: the failed push was not noted: {e}");
        }
    }
    // A key limited to some charts learns nothing from D1's rows about groups it cannot see.
    if caller.limit().is_some() {
        ctx.db.hide_cost();
    }
    outcome
}

thread_local! {
    /// The groups this isolate is pushing to now.
    static PUSHING: std::cell::RefCell<std::collections::HashSet<String>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// A push's turn at its group within this isolate. Waiters poll on a timer of their own, as
/// group commit does: the runtime cancels a request that waits on a promise only another
/// request could settle.
struct Turn(Option<String>);

impl Turn {
    async fn take(key: &str) -> Turn {
        let started = worker::js_sys::Date::now();
        loop {
            if PUSHING.with(|p| p.borrow_mut().insert(key.to_string())) {
                return Turn(Some(key.to_string()));
            }
            // A holder that vanished without dropping its turn must not stop the group: after a
            // while, go on without one (the version check still keeps pushes apart).
            if worker::js_sys::Date::now() - started > 10_000.0 {
                return Turn(None);
            }
            worker::Delay::from(std::time::Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(key) = self.0.take() {
            PUSHING.with(|p| p.borrow_mut().remove(&key));
        }
    }
}

/// Names `/metrics` writes itself: a push may not bring its own.
const RESERVED: [&str; 3] = [
    "push_time_seconds",
    "push_failure_time_seconds",
    "pushplot_value",
];
/// The most live groups, and the longest a group's text may grow (a POST adds to it): every push
/// and scrape reads and parses them all, as the Pushgateway checks its whole store.
const MAX_GROUPS: usize = 1000;
const MAX_GROUP_BYTES: usize = 256 * 1024;
/// Tries of a push whose group keeps changing under it; then `503 busy`, nothing stored.
const MAX_TRIES: usize = 8;

/// One try of a push: `Ok(None)` when its group changed since it was read and nothing was
/// stored.
async fn apply(
    ctx: &Ctx,
    caller: &Caller,
    how: PushMethod,
    grouping: &Grouping,
    key: &str,
    body: &[u8],
) -> Result<Option<Response>> {
    let pushed = expo::parse(body, grouping.labels())?;
    if let Some(f) = pushed.iter().find(|f| RESERVED.contains(&f.name.as_str())) {
        return Err(ApiError::new(
            Code::InvalidExposition,
            format!(
                "line {}: {} is written by /metrics itself",
                f.samples.first().map_or(0, |s| s.line),
                f.name
            ),
        ));
    }
    may_write(caller, &pushed)?;
    // Every group in /metrics: the push must fit beside the others (one type per metric, no
    // series from two groups), as the Pushgateway checks its whole store. One row per group.
    let since = ctx.cfg.metrics_ttl_seconds.map(|ttl| ctx.now - ttl as f64);
    let mut before = None;
    let mut others: Vec<Family> = Vec::new();
    let groups = ctx.db.groups(since).await?;
    let live = groups.len();
    for row in groups {
        if row.grouping == key {
            before = Some(row);
        } else {
            others.extend(stored(&row));
        }
    }
    if before.is_none() && live >= MAX_GROUPS && how != PushMethod::Delete {
        return Err(ApiError::new(
            Code::TooManyGroups,
            format!("/metrics holds {MAX_GROUPS} groups, the most it keeps: delete some, or let METRICS_TTL expire them"),
        ));
    }
    let kept = before.as_ref().map(stored).unwrap_or_default();
    // The group must be the caller's: a POST adds to it and refreshes its push time too. A group
    // whose text no longer reads counts as someone else's, unless the key may write everything.
    if before
        .as_ref()
        .is_some_and(|b| !b.metrics.is_empty() && kept.is_empty())
        && caller.limit().is_some()
    {
        let limit = caller.limit().map(|l| l.describe()).unwrap_or_default();
        return Err(ApiError::forbidden(format!(
            "this key is limited to {limit}"
        )));
    }
    may_write(caller, &kept)?;
    let done = |status| {
        Ok(Some(http::text(
            status,
            "text/plain; charset=utf-8",
            String::new(),
        )))
    };
    if how == PushMethod::Delete {
        // The Pushgateway answers a delete of nothing as a success; so does this.
        if let Some(b) = &before {
            let write = GroupWrite::Delete {
                grouping: key,
                read: b.version,
            };
            if !ctx.db.push(write, &[], since, &ctx.cfg, ctx.now).await? {
                return Ok(None);
            }
        }
        return done(202);
    }
    let charted = expo::chart(&pushed, &ctx.cfg, ctx.now)?;
    // PUT replaces the group; POST only the metrics its body names, and the push must fit
    // beside the rest of the group as beside other groups.
    let staying: Vec<Family> = match how {
        PushMethod::Post => kept
            .into_iter()
            .filter(|old| !pushed.iter().any(|f| f.name == old.name))
            .collect(),
        _ => Vec::new(),
    };
    others.extend(staying.iter().cloned());
    expo::check_against(&pushed, &others)?;
    check_series_per_chart(
        charted.batch.series.iter().map(|s| &s.chart),
        ctx.cfg.max_series_per_chart,
    )?;
    let mut group = staying;
    group.extend(pushed);
    let mut text = String::new();
    expo::render(&group, &mut text);
    // What is stored must read back for every later push and scrape: a merge can put a family
    // beside one whose samples it shadows (x_count beside a summary x), and the grouping labels
    // lengthen lines past what the reader takes.
    if text.len() > MAX_GROUP_BYTES {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!("the group would hold {} bytes of metrics, more than {MAX_GROUP_BYTES}: push fewer, or in more groups", text.len()),
        ));
    }
    if let Err(e) = expo::parse(text.as_bytes(), &[]) {
        return Err(ApiError::new(
            Code::InvalidExposition,
            format!("the group as this push would leave it does not read back ({}): a metric may clash with another's _sum, _count or _bucket, or a line grow too long with the grouping labels", e.message),
        ));
    }
    let names = serde_json::to_string(&charts(&group)).map_err(|_| ApiError::internal())?;
    let params = charted.batch.to_sql_params(MAX_PARAM_BYTES);
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    let write = GroupWrite::Save {
        grouping: key,
        job: grouping.job(),
        metrics: &text,
        names: &names,
        read: before.as_ref().map(|b| b.version),
    };
    if !ctx
        .db
        .push(write, &params, since, &ctx.cfg, ctx.now)
        .await?
    {
        return Ok(None);
    }
    judge_alerts_later(ctx, &charted.batch);
    done(200)
}

/// The charts families write: their samples' names (`h_bucket`, `h_sum`... for a histogram
/// `h`), each once.
fn charts(families: &[Family]) -> Vec<&str> {
    let mut names: Vec<&str> = families
        .iter()
        .flat_map(|f| f.samples.iter().map(|s| s.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Whether the caller may write every chart of `families`: each sample becomes a point of the
/// chart named after it.
fn may_write(caller: &Caller, families: &[Family]) -> Result<()> {
    for name in charts(families) {
        caller.may(Action::Ingest(&ChartName::parse(name)?), false)?;
    }
    Ok(())
}

/// Whether the caller may read every chart of a family: a limited key sees a family whole or
/// not at all (a histogram with its `_sum` alone would be no histogram).
fn may_see(caller: &Caller, family: &Family) -> bool {
    caller
        .limit()
        .is_none_or(|l| family.samples.iter().all(|s| l.allows(&s.name)))
}

/// Go's client pushes protobuf unless told otherwise, and client_python may compress: say how to
/// send plain text instead.
fn refuse_protobuf(content_type: Option<&str>, encoding: Option<&str>) -> Result<()> {
    if encoding.is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity")) {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "pushplot reads push bodies uncompressed; send without Content-Encoding \
             (prometheus_client: compression=None, the default)",
        ));
    }
    match content_type {
        Some(t) if t.contains("protobuf") => Err(ApiError::new(
            Code::UnsupportedMediaType,
            "pushplot reads the text format 0.0.4 only; in Go, push with \
             push.New(url, job).Format(expfmt.NewFormat(expfmt.TypeTextPlain))",
        )),
        _ => Ok(()),
    }
}

/// A stored group's families, as its last push left them (grouping labels on every sample). A
/// text that does not read back (stored before a check that now refuses it) is logged and counts
/// as empty, so that one bad group cannot stop every push and scrape, nor its own delete.
fn stored(row: &GroupRow) -> Vec<Family> {
    expo::parse(row.metrics.as_bytes(), &[]).unwrap_or_else(|e| {
        worker::console_error!(
            "metric group {}: its stored text does not read back: {e}",
            row.grouping
        );
        Vec::new()
    })
}

/// `GET /metrics`: every live group's metrics with their push times, as the Pushgateway shows them
/// (for `honor_labels: true`), and the last value of each series sent as JSON, as
/// `pushplot_value{chart="..."}`. A key limited to some charts sees only those.
pub async fn scrape(ctx: &Ctx) -> Result<Response> {
    let caller = auth::caller(ctx).await?;
    caller.may(Action::ListCharts, false)?;
    let since = ctx.cfg.metrics_ttl_seconds.map(|ttl| ctx.now - ttl as f64);
    let groups = ctx.db.groups(since).await?;
    let mut families: Vec<Family> = Vec::new();
    let (mut pushed_at, mut failed_at) = (
        times("push_time_seconds"),
        times("push_failure_time_seconds"),
    );
    pushed_at.help =
        Some("Last Unix time when changing this group in the Pushgateway succeeded.".into());
    failed_at.help =
        Some("Last Unix time when changing this group in the Pushgateway failed.".into());
    for g in &groups {
        let grouping: Vec<(String, String)> = Labels::from_canonical(&g.grouping)?
            .as_map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let stored = stored(g);
        // An empty group (an empty push, or only refused ones) is seen by keys that see all.
        let mut visible = stored.is_empty() && caller.limit().is_none();
        for f in stored {
            if may_see(&caller, &f) {
                visible = true;
                families.push(f);
            }
        }
        // A group the key sees nothing of stays out entirely, its push times too.
        if visible {
            pushed_at
                .samples
                .push(sample("push_time_seconds", &grouping, g.pushed_at));
            failed_at
                .samples
                .push(sample("push_failure_time_seconds", &grouping, g.failed_at));
        }
    }
    if !pushed_at.samples.is_empty() {
        families.push(pushed_at);
        families.push(failed_at);
    }
    // As the Pushgateway shows them: a pushed sample without `instance` gets `instance=""`, so
    // that Prometheus (honor_labels) does not put pushplot's own address there.
    for s in families.iter_mut().flat_map(|f| f.samples.iter_mut()) {
        if let Err(at) = s
            .labels
            .binary_search_by(|(k, _)| k.as_str().cmp("instance"))
        {
            s.labels.insert(at, ("instance".to_string(), String::new()));
        }
    }
    let json = json_series(ctx, &caller).await?;
    if !json.samples.is_empty() {
        families.push(json);
    }
    let mut text = String::new();
    expo::render(&families, &mut text);
    Ok(http::text(200, TEXT_FORMAT, text))
}

fn times(name: &str) -> Family {
    Family {
        name: name.to_string(),
        kind: Kind::Gauge,
        help: None,
        samples: Vec::new(),
    }
}

fn sample(name: &str, labels: &[(String, String)], value: f64) -> Sample {
    Sample {
        name: name.to_string(),
        labels: labels.to_vec(),
        value,
        line: 0,
    }
}

/// `pushplot_value`: the newest bucket's last value of every series the caller may see that no
/// push wrote (those show as pushed while their group lives, and not at all after). A series
/// label `chart` is renamed as Prometheus renames a clashing label.
async fn json_series(ctx: &Ctx, caller: &Caller) -> Result<Family> {
    let names = caller.limit().map_or(
        crate::domain::keys::Names::Range {
            from: String::new(),
            until: None,
        },
        crate::domain::keys::ChartLimit::names,
    );
    let rows = ctx.db.last_values(&names).await?;
    let mut family = times("pushplot_value");
    family.help = Some("The last value of each series sent to pushplot as JSON.".into());
    for r in rows {
        if !caller.limit().is_none_or(|l| l.allows(&r.chart)) {
            continue;
        }
        let Some(newest) = r.newest.as_deref() else {
            continue;
        };
        let Ok((_, _, _, _, last, _)) =
            serde_json::from_str::<(f64, f64, f64, f64, f64, f64)>(newest)
        else {
            continue;
        };
        let mut labels = vec![("chart".to_string(), r.chart.clone())];
        for (k, v) in Labels::from_canonical(&r.labels)?.as_map() {
            labels.push((expo::label_name(k), v.clone()));
        }
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        family.samples.push(sample("pushplot_value", &labels, last));
    }
    Ok(family)
}
