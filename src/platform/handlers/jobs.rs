//! Jobs: pings from cron jobs and scripts (`/ping/{job}[/start|/fail|/{code}]`), schedules, status
//! and runs. Each finished run is also charted through the normal ingest path.

use crate::domain::error::{ApiError, Code};
use crate::domain::ingest::Batch;
use crate::domain::job::{
    run_message, JobName, JobState, Outcome, Ping, PingKind, Run, RunId, Status, Transition,
    RUNS_SHOWN,
};
use crate::domain::keys::{Action, Names};
use crate::domain::notify::Event;
use crate::domain::schedule::{FixedOffset, JobSettings, Schedule, Zone};
use crate::platform::context::{writer_id, Ctx, Result};
use crate::platform::db::{Db, JobRow, JobWrite, RunWrite};
use crate::platform::handlers::channels;
use crate::platform::zone::IntlZone;
use crate::platform::{auth, commit, http, notify};
use serde::Serialize;
use std::rc::Rc;
use worker::Response;

/// A ping that lost a race with another ping of the same job reads the job again this often.
const SAVE_TRIES: usize = 4;

/// The zone a schedule is read in: UTC for a period, the runtime's Intl for a cron time zone.
pub fn zone_of(schedule: &Schedule) -> Result<Rc<dyn Zone>> {
    match schedule.tz() {
        None | Some("UTC") | Some("Etc/UTC") => Ok(Rc::new(FixedOffset(0))),
        Some(tz) => Ok(IntlZone::named(tz)?),
    }
}

/// A stored job as the domain knows it.
pub struct Loaded {
    pub schedule: Schedule,
    pub state: JobState,
    pub created_at: f64,
    pub version: Option<f64>,
    /// The channels it notifies, as a JSON array of ids; `None` for every channel.
    pub channels: Option<String>,
}

pub fn load(row: Option<&JobRow>, now: f64) -> Result<Loaded> {
    let Some(row) = row else {
        return Ok(Loaded {
            schedule: Schedule::default(),
            state: JobState::new(now),
            created_at: now.floor(),
            version: None,
            channels: None,
        });
    };
    let broken = |what: &str| {
        worker::console_error!("job {:?}: its stored {what} does not read back", row.name);
        ApiError::internal()
    };
    let schedule = JobSettings::parse(row.schedule.as_bytes(), None)
        .map_err(|_| broken("schedule"))?
        .schedule
        .unwrap_or_default();
    let mut state: JobState = serde_json::from_str(&row.state).map_err(|_| broken("state"))?;
    state.backfill_told();
    Ok(Loaded {
        schedule,
        state,
        created_at: row.created_at,
        version: Some(row.version),
        channels: row.channels.clone(),
    })
}

/// A job judged at a moment: its settled state, what changed, and the texts its row is saved
/// with. Pings, schedule changes and the minutely check all save a job this one way.
pub struct Judged {
    pub loaded: Loaded,
    pub zone: Rc<dyn Zone>,
    pub change: Option<Transition>,
    /// The change to tell the channels, if any (see `JobState::tell`).
    pub tell: Option<Transition>,
    schedule_json: String,
    state_json: String,
}

impl Judged {
    pub fn new(mut loaded: Loaded, now: f64) -> Result<Judged> {
        let zone = zone_of(&loaded.schedule)?;
        let (mut state, change) = loaded.state.clone().settle(&loaded.schedule, &*zone, now);
        let tell = state.tell(change.as_ref(), now);
        loaded.state = state;
        Ok(Judged {
            schedule_json: encode(&loaded.schedule.to_json())?,
            state_json: encode(&loaded.state)?,
            loaded,
            zone,
            change,
            tell,
        })
    }

    /// The row this job is saved as.
    pub fn write<'a>(&'a self, name: &'a str, now: f64) -> JobWrite<'a> {
        let (loaded, zone) = (&self.loaded, &*self.zone);
        let s = &loaded.state;
        let since = s.since.floor() as i64;
        let finished = s.last_ping.filter(|t| *t >= s.since);
        JobWrite {
            name,
            schedule: &self.schedule_json,
            paused: s.paused,
            status: s.status.as_str(),
            state: &self.state_json,
            created_at: loaded.created_at,
            last_ping: s.last_ping,
            next_due: loaded
                .schedule
                .next_due(zone, finished.map(|t| t.floor() as i64), since),
            check_at: s.check_at(&loaded.schedule, zone, now),
            version: loaded.version,
            channels: loaded.channels.as_deref(),
        }
    }
}

fn encode<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| {
        worker::console_error!("a job did not serialize: {e}");
        ApiError::internal()
    })
}

/// `GET|POST /api/v1/ping/{job}[/start|/fail|/{code}]`: the first ping creates the job.
pub async fn ping(ctx: &mut Ctx, job: &JobName, kind: PingKind) -> Result<Response> {
    let caller = auth::pinger(ctx).await?;
    caller.may(Action::PingJob(job.as_str()), false)?;
    // Its runs are charted: a key that may not write those charts may not ping the job.
    caller.may(Action::Ingest(job.exit_code_chart()), false)?;
    caller.may(Action::Ingest(job.duration_chart()), false)?;
    let rid = ctx.param("rid").map(RunId::parse).transpose()?;
    let message = run_message(&ctx.body().await?);
    let ping = Ping {
        kind,
        rid,
        at: ctx.now,
    };
    let mut finished: Option<Run> = None;
    let mut status = Status::New;
    let mut saved = false;
    for _ in 0..SAVE_TRIES {
        let writer = writer_id()?;
        let row = ctx.db.job(job.as_str()).await?;
        let mut loaded = load(row.as_ref(), ctx.now)?;
        let (state, run) = loaded.state.clone().record(&ping);
        loaded.state = state;
        let judged = Judged::new(loaded, ctx.now)?;
        let write = judged.write(job.as_str(), ctx.now);
        let run_write = run.as_ref().map(|r| RunWrite {
            started: r.started,
            finished: r.finished,
            duration: r.duration,
            exit_code: r.exit_code,
            status: r.outcome.as_str(),
            message: &message,
        });
        let events: Vec<String> = judged
            .tell
            .map(|c| {
                let detail = run.as_ref().map(|r| r.detail(&message));
                Event::job(job, &c, ctx.now, detail, ctx.base_url().as_deref()).to_json()
            })
            .into_iter()
            .collect();
        let (ok, queued) = ctx
            .db
            .save_job(&write, run_write.as_ref(), &events, &writer, ctx.now)
            .await?;
        if ok {
            deliver_later(ctx, queued);
            status = judged.loaded.state.status;
            finished = run;
            saved = true;
            break;
        }
    }
    if !saved {
        // Every try lost to another save of the same job: nothing of this ping was written.
        return Err(ApiError::busy());
    }
    if let Some(run) = finished {
        // The run is saved; its charts are a copy. A failure here must not make curl send the
        // ping again (that would record the run twice): it is logged, and the answer is OK.
        if let Err(e) = chart_run(&ctx.db, job, &run, ctx).await {
            worker::console_error!("job {job}: the run was saved, its charts were not: {e}");
        }
    }
    let wants_json = ctx
        .header("Accept")
        .is_some_and(|a| a.contains("application/json"));
    Ok(if wants_json {
        http::raw_json(
            200,
            format!(r#"{{"ok":true,"status":"{}"}}"#, status.as_str()),
        )
    } else {
        http::plain(200, "OK\n")
    })
}

/// Delivers queued notifications after the response; what does not fit one invocation's budget,
/// or fails, the minutely run takes up.
pub fn deliver_later(ctx: &Ctx, ids: Vec<f64>) {
    if ids.is_empty() {
        return;
    }
    crate::platform::after_response(ctx, "notifications", move |_, db| async move {
        notify::send_now(&db, ids).await
    });
}

/// `{job}.duration` (when a start paired) and `{job}.exit_code` (0 for success, the reported code,
/// else 1 for a failure), as points through the same path as any ingest.
async fn chart_run(db: &Db, job: &JobName, run: &Run, ctx: &Ctx) -> Result<()> {
    let code = run
        .exit_code
        .map(f64::from)
        .unwrap_or(if run.outcome == Outcome::Success {
            0.0
        } else {
            1.0
        });
    let mut points = vec![serde_json::json!({
        "chart": job.exit_code_chart().as_str(), "value": code, "ts": run.finished,
    })];
    if let Some(d) = run.duration {
        points.push(serde_json::json!({
            "chart": job.duration_chart().as_str(), "value": d, "ts": run.finished,
        }));
    }
    let body = encode(&points)?;
    let batch = Batch::parse(body.as_bytes(), &ctx.cfg, ctx.now)?;
    let written = commit::write(db, &batch, &ctx.cfg, ctx.now).await?;
    db.share(written.cost, written.requests, written.led);
    // Rules on a job's duration or exit code are judged as for any ingest.
    crate::platform::handlers::ingest::judge_alerts_later(ctx, &batch);
    Ok(())
}

#[derive(Serialize)]
struct JobOut<'a> {
    job: &'a str,
    status: &'a str,
    schedule: serde_json::Value,
    paused: bool,
    created_at: f64,
    last_ping: Option<f64>,
    next_due: Option<f64>,
    last_duration: Option<f64>,
    last_exit_code: Option<f64>,
    /// The channel ids it notifies; null for every channel.
    channels: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<Vec<RunOut<'a>>>,
}

#[derive(Serialize)]
struct RunOut<'a> {
    started: Option<f64>,
    finished: f64,
    duration: Option<f64>,
    exit_code: Option<f64>,
    status: &'a str,
    message: &'a str,
}

fn job_out(row: &JobRow) -> JobOut<'_> {
    let schedule: serde_json::Value = serde_json::from_str(&row.schedule).unwrap_or_default();
    JobOut {
        job: &row.name,
        status: &row.status,
        schedule,
        paused: row.paused != 0.0,
        created_at: row.created_at,
        last_ping: row.last_ping,
        next_due: row.next_due,
        last_duration: row.last_duration,
        last_exit_code: row.last_exit_code,
        channels: row
            .channels
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok()),
        runs: None,
    }
}

/// `GET /api/v1/jobs`: every job the caller may see, with its stored status.
pub async fn list(ctx: &Ctx) -> Result<Response> {
    let caller = auth::reader(ctx).await?;
    caller.may(Action::ListJobs, false)?;
    let names = caller.limit().map_or(
        Names::Range {
            from: String::new(),
            until: None,
        },
        |l| l.names(),
    );
    let rows = ctx.db.jobs(&names).await?;
    #[derive(Serialize)]
    struct Answer<'a> {
        jobs: Vec<JobOut<'a>>,
    }
    let jobs = rows
        .iter()
        .filter(|r| caller.limit().is_none_or(|l| l.allows(&r.name)))
        .map(job_out)
        .collect();
    Ok(http::json(200, &Answer { jobs }))
}

/// `GET /api/v1/jobs/{job}`: the job with its newest 100 runs (`RUNS_SHOWN`).
pub async fn get(ctx: &Ctx, job: &JobName) -> Result<Response> {
    let caller = auth::reader(ctx).await?;
    caller.may(Action::ReadJob(job.as_str()), false)?;
    let row = ctx
        .db
        .job(job.as_str())
        .await?
        .ok_or_else(|| not_found(job))?;
    let runs = ctx.db.runs(job.as_str(), RUNS_SHOWN as u32).await?;
    let mut out = job_out(&row);
    out.runs = Some(
        runs.iter()
            .map(|r| RunOut {
                started: r.started,
                finished: r.finished,
                duration: r.duration,
                exit_code: r.exit_code,
                status: &r.status,
                message: &r.message,
            })
            .collect(),
    );
    Ok(http::json(200, &out))
}

/// `PUT /api/v1/jobs/{job}`: its schedule (`period` or `cron` with `tz`, and `grace`) and `paused`;
/// creates the job if needed.
pub async fn configure(ctx: &mut Ctx, job: &JobName) -> Result<Response> {
    let caller = auth::caller(ctx).await?;
    caller.may(Action::PingJob(job.as_str()), false)?;
    let body = ctx.body().await?;
    let mut named = None;
    for _ in 0..SAVE_TRIES {
        let row = ctx.db.job(job.as_str()).await?;
        let mut loaded = load(row.as_ref(), ctx.now)?;
        let current = row.as_ref().map(|_| &loaded.schedule);
        let settings = JobSettings::parse(&body, current)?;
        if let Some(list) = &settings.channels {
            // Who is told is an admin's call: a crontab's ingest key may set a schedule, not
            // narrow the list of channels an admin made.
            caller.may(Action::ManageChannels, false)?;
            if named.is_none() {
                named = Some(channels::named(ctx, list.as_deref()).await?);
            }
            loaded.channels = named.clone().flatten();
        }
        if let Some(s) = settings.schedule {
            loaded.schedule = s;
        }
        if let Some(p) = settings.paused {
            if p != loaded.state.paused {
                loaded.state = loaded.state.clone().set_paused(p, ctx.now);
            }
        }
        let judged = Judged::new(loaded, ctx.now)?;
        let write = judged.write(job.as_str(), ctx.now);
        let writer = writer_id()?;
        // A schedule or a resume can change the status too; what is told is told here.
        let events: Vec<String> = judged
            .tell
            .map(|c| Event::job(job, &c, ctx.now, None, ctx.base_url().as_deref()).to_json())
            .into_iter()
            .collect();
        let (saved, queued) = ctx
            .db
            .save_job(&write, None, &events, &writer, ctx.now)
            .await?;
        if saved {
            deliver_later(ctx, queued);
            let row = ctx
                .db
                .job(job.as_str())
                .await?
                .ok_or_else(ApiError::internal)?;
            return Ok(http::json(200, &job_out(&row)));
        }
    }
    Err(ApiError::busy())
}

/// `DELETE /api/v1/jobs/{job}`: admin only; the job and its runs. Its charts stay.
pub async fn delete(ctx: &Ctx, job: &JobName) -> Result<Response> {
    auth::caller(ctx)
        .await?
        .may(Action::DeleteJob(job.as_str()), false)?;
    if !ctx.db.delete_job(job.as_str()).await? {
        return Err(not_found(job));
    }
    Ok(http::ok())
}

fn not_found(job: &JobName) -> ApiError {
    ApiError::new(Code::NotFound, format!("no job named {:?}", job.as_str()))
}
