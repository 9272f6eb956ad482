//! Jobs and their runs: one row per job (its schedule and state, written whole by each ping under a
//! version check), the newest 100 runs, and the jobs due for the scheduled check.

use super::notify::Guarded;
use super::{names_where, num, opt, text, Db, Result};
use crate::domain::keys::Names;
use serde::Deserialize;
use wasm_bindgen::JsValue;

#[derive(Deserialize)]
pub struct JobRow {
    pub name: String,
    /// `Schedule::to_json`, as text.
    pub schedule: String,
    pub paused: f64,
    pub status: String,
    /// `JobState` as JSON.
    pub state: String,
    pub created_at: f64,
    pub last_ping: Option<f64>,
    pub next_due: Option<f64>,
    pub last_duration: Option<f64>,
    pub last_exit_code: Option<f64>,
    pub version: f64,
    /// A JSON array of channel ids, or NULL for every channel.
    pub channels: Option<String>,
}

#[derive(Deserialize)]
pub struct RunRow {
    pub started: Option<f64>,
    pub finished: f64,
    pub duration: Option<f64>,
    pub exit_code: Option<f64>,
    pub status: String,
    pub message: String,
}

/// A job as a ping or a schedule change leaves it.
pub struct JobWrite<'a> {
    pub name: &'a str,
    pub schedule: &'a str,
    pub paused: bool,
    pub status: &'a str,
    pub state: &'a str,
    pub created_at: f64,
    pub last_ping: Option<f64>,
    pub next_due: Option<i64>,
    pub check_at: Option<i64>,
    /// The version read, or `None` for a job that did not exist.
    pub version: Option<f64>,
    pub channels: Option<&'a str>,
}

/// A finished run to record with the job.
pub struct RunWrite<'a> {
    pub started: Option<f64>,
    pub finished: f64,
    pub duration: Option<f64>,
    pub exit_code: Option<u8>,
    pub status: &'a str,
    pub message: &'a str,
}

const JOB_COLUMNS: &str = "name, schedule, paused, status, state, created_at, last_ping, next_due,
    last_duration, last_exit_code, version, channels";

impl Db {
    pub async fn job(&self, name: &str) -> Result<Option<JobRow>> {
        let mut rows = self
            .all(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE name = ?1"),
                &[text(name)],
            )
            .await?;
        Ok(rows.pop())
    }

    /// Saves a job, its finished run and the notifications of its change in one transaction, if
    /// nobody saved it since it was read (its version is unchanged). `writer` is a random text of
    /// this save: the run and the notifications go in only if the job row is the one this save
    /// wrote, so a save that lost a race adds nothing. Returns whether it was saved (if not, read
    /// it again and retry) and the ids of the notifications queued.
    pub async fn save_job(
        &self,
        job: &JobWrite<'_>,
        run: Option<&RunWrite<'_>>,
        events: &[String],
        writer: &str,
        now: f64,
    ) -> Result<(bool, Vec<f64>)> {
        let new_version = job.version.map_or(0.0, |v| v + 1.0);
        let (last_duration, last_exit) = match run {
            Some(r) => (opt(r.duration), opt(r.exit_code.map(f64::from))),
            None => (JsValue::NULL, JsValue::NULL),
        };
        let upsert = self.stmt(
            "INSERT INTO jobs (name, schedule, paused, status, state, created_at, last_ping,
                               next_due, check_at, last_duration, last_exit_code, version, writer,
                               channels)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?14, ?15)
             ON CONFLICT (name) DO UPDATE SET
               schedule = excluded.schedule, paused = excluded.paused, status = excluded.status,
               state = excluded.state, last_ping = excluded.last_ping,
               next_due = excluded.next_due, check_at = excluded.check_at,
               last_duration = COALESCE(excluded.last_duration, last_duration),
               last_exit_code = CASE WHEN ?13 THEN excluded.last_exit_code ELSE last_exit_code END,
               version = excluded.version, writer = excluded.writer,
               channels = excluded.channels
             WHERE version = ?12 - 1",
            &[
                text(job.name),
                text(job.schedule),
                num(u8::from(job.paused)),
                text(job.status),
                text(job.state),
                num(job.created_at),
                opt(job.last_ping),
                opt(job.next_due.map(|t| t as f64)),
                opt(job.check_at.map(|t| t as f64)),
                last_duration,
                last_exit,
                num(new_version),
                num(u8::from(run.is_some())),
                text(writer),
                job.channels.map(text).unwrap_or(JsValue::NULL),
            ],
        )?;
        let mut stmts = vec![upsert];
        if let Some(r) = run {
            // Only if the job row above is this save's.
            stmts.push(self.stmt(
                "INSERT INTO runs (job, id, started, finished, duration, exit_code, status, message)
                 SELECT ?1, COALESCE((SELECT MAX(id) FROM runs WHERE job = ?1), 0) + 1,
                        ?2, ?3, ?4, ?5, ?6, ?7
                 WHERE (SELECT writer FROM jobs WHERE name = ?1) = ?8",
                &[
                    text(job.name),
                    opt(r.started),
                    num(r.finished),
                    opt(r.duration),
                    opt(r.exit_code.map(f64::from)),
                    text(r.status),
                    text(r.message),
                    text(writer),
                ],
            )?);
        }
        let guarded: Vec<Guarded> = events
            .iter()
            .map(|e| Guarded {
                job: Some(job.name),
                alert: None,
                writer,
                event: e,
                channels: job.channels,
            })
            .collect();
        let queued_at = stmts.len();
        if !guarded.is_empty() {
            stmts.push(self.queue_guarded(&guarded, now)?);
        }
        let results = self.batch(stmts).await?;
        let ids = if guarded.is_empty() {
            Vec::new()
        } else {
            Self::ids(results.get(queued_at), now)
        };
        Ok((Self::changes(results.first()) > 0, ids))
    }

    /// The newest `limit` runs of a job, newest first.
    pub async fn runs(&self, job: &str, limit: u32) -> Result<Vec<RunRow>> {
        self.all(
            "SELECT started, finished, duration, exit_code, status, message FROM runs
             WHERE job = ?1 ORDER BY id DESC LIMIT ?2",
            &[text(job), num(limit)],
        )
        .await
    }

    /// The jobs a caller may list, by name, along the primary key.
    pub async fn jobs(&self, names: &Names) -> Result<Vec<JobRow>> {
        let (clause, from, until) = names_where(names, "name", 1, 2);
        self.all(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {clause} ORDER BY name"),
            &[from, until],
        )
        .await
    }

    /// Jobs whose status may have changed by `now` without a ping, soonest first. Every job row
    /// is read: an index on `check_at` would cost each ping a written row (migration 0008).
    pub async fn due_jobs(&self, now: f64, limit: u32) -> Result<Vec<JobRow>> {
        self.all(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE check_at <= ?1 ORDER BY check_at LIMIT ?2"
            ),
            &[num(now.floor()), num(limit)],
        )
        .await
    }

    /// Updates jobs and rules the scheduled check judged (rules as `Db::save_alerts` takes
    /// them), each only if nothing saved it meanwhile, and queues the notifications of the changes
    /// that were saved, in one transaction.
    pub async fn settle(
        &self,
        jobs: &[JobWrite<'_>],
        alerts: Option<&str>,
        writer: &str,
        events: &[Guarded<'_>],
        now: f64,
    ) -> Result<Vec<f64>> {
        if jobs.is_empty() && alerts.is_none() {
            return Ok(Vec::new());
        }
        let mut stmts = jobs
            .iter()
            .map(|j| {
                self.stmt(
                    "UPDATE jobs SET status = ?2, state = ?3, next_due = ?4, check_at = ?5,
                       version = version + 1, writer = ?7
                     WHERE name = ?1 AND version = ?6",
                    &[
                        text(j.name),
                        text(j.status),
                        text(j.state),
                        opt(j.next_due.map(|t| t as f64)),
                        opt(j.check_at.map(|t| t as f64)),
                        opt(j.version),
                        text(writer),
                    ],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(saves) = alerts {
            stmts.push(self.save_alerts(saves, writer, now)?);
        }
        let queued_at = stmts.len();
        if !events.is_empty() {
            stmts.push(self.queue_guarded(events, now)?);
        }
        let results = self.batch(stmts).await?;
        Ok(if events.is_empty() {
            Vec::new()
        } else {
            Self::ids(results.get(queued_at), now)
        })
    }

    /// Moves a job whose stored row cannot be judged out of the check's way for an hour, so that
    /// it cannot hold back the jobs behind it.
    pub async fn postpone_job(&self, name: &str, until: f64) -> Result<()> {
        self.batch(vec![self.stmt(
            "UPDATE jobs SET check_at = ?2 WHERE name = ?1",
            &[text(name), num(until)],
        )?])
        .await?;
        Ok(())
    }

    /// Deletes a job and its runs; its charts stay. Returns whether there was a job.
    pub async fn delete_job(&self, name: &str) -> Result<bool> {
        let r = self
            .batch(vec![
                self.stmt("DELETE FROM runs WHERE job = ?1", &[text(name)])?,
                self.stmt("DELETE FROM jobs WHERE name = ?1", &[text(name)])?,
            ])
            .await?;
        Ok(Self::changes(r.get(1)) > 0)
    }
}
