//! Jobs and their runs: one row per job (its schedule and state, written whole by each ping under a
//! version check, with its newest runs), older runs in blocks of ten, and the jobs due for the
//! scheduled check.

use super::notify::Guarded;
use super::{internal, names_where, num, opt, text, Db, Result};
use crate::domain::job::{newest_runs, RUNS_PER_BLOCK};
use crate::domain::keys::Names;
use serde::{Deserialize, Serialize};
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

/// A run as `jobs.recent` and `run_blocks.runs` hold it (migration 0013).
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

/// A finished run to record with the job, in the form `RunRow` reads.
#[derive(Serialize)]
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
    /// nobody saved it since it was read (its version is unchanged). The run goes into the job's
    /// row (`recent`) with it. `writer` is a random text of this save: the notifications go in
    /// only if the job row is the one this save wrote, so a save that lost a race adds nothing.
    /// Returns whether it was saved (if not, read it again and retry) and the ids of the
    /// notifications queued.
    pub async fn save_job(
        &self,
        job: &JobWrite<'_>,
        run: Option<&RunWrite<'_>>,
        events: &[String],
        writer: &str,
        now: f64,
    ) -> Result<(bool, Vec<f64>)> {
        let new_version = job.version.map_or(0.0, |v| v + 1.0);
        let (last_duration, last_exit, run_json) = match run {
            Some(r) => (
                opt(r.duration),
                opt(r.exit_code.map(f64::from)),
                text(&serde_json::to_string(r).map_err(internal("encode run"))?),
            ),
            None => (JsValue::NULL, JsValue::NULL, JsValue::NULL),
        };
        let mut stmts = Vec::with_capacity(3);
        if let (Some(_), Some(version)) = (run, job.version) {
            // A row holding its full ten runs files them as the job's next block (which takes
            // over the oldest block in place: migration 0013) before the save below starts its
            // `recent` afresh. Under the same version check as that save, in the same
            // transaction: both happen, or neither.
            stmts.push(self.stmt(
                "INSERT INTO run_blocks (job, id, runs)
                 SELECT name, COALESCE((SELECT MAX(b.id) FROM run_blocks AS b WHERE b.job = ?1), 0) + 1,
                        recent
                 FROM jobs WHERE name = ?1 AND version = ?2 AND json_array_length(recent) >= ?3",
                &[text(job.name), num(version), num(RUNS_PER_BLOCK as f64)],
            )?);
        }
        let saved_at = stmts.len();
        stmts.push(self.stmt(
            "INSERT INTO jobs (name, schedule, paused, status, state, created_at, last_ping,
                               next_due, check_at, last_duration, last_exit_code, version, writer,
                               channels, recent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?14, ?15,
                     CASE WHEN ?13 THEN json_array(json(?16)) ELSE '[]' END)
             ON CONFLICT (name) DO UPDATE SET
               schedule = excluded.schedule, paused = excluded.paused, status = excluded.status,
               state = excluded.state, last_ping = excluded.last_ping,
               next_due = excluded.next_due, check_at = excluded.check_at,
               last_duration = COALESCE(excluded.last_duration, last_duration),
               last_exit_code = CASE WHEN ?13 THEN excluded.last_exit_code ELSE last_exit_code END,
               version = excluded.version, writer = excluded.writer,
               channels = excluded.channels,
               recent = CASE WHEN NOT ?13 THEN recent
                             WHEN json_array_length(recent) >= ?17 THEN json_array(json(?16))
                             ELSE json_insert(recent, '$[#]', json(?16)) END
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
                run_json,
                num(RUNS_PER_BLOCK as f64),
            ],
        )?);
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
        Ok((Self::changes(results.get(saved_at)) > 0, ids))
    }

    /// The newest `limit` runs of a job, newest first: the runs in its row and as many of its
    /// blocks as `limit` needs, so 100 runs read 11 rows.
    pub async fn runs(&self, job: &str, limit: u32) -> Result<Vec<RunRow>> {
        #[derive(Deserialize)]
        struct Block {
            id: f64,
            runs: String,
        }
        let blocks: Vec<Block> = self
            .all(
                "SELECT 0 AS id, recent AS runs FROM jobs WHERE name = ?1
                 UNION ALL
                 SELECT * FROM (SELECT id, runs FROM run_blocks WHERE job = ?1
                                ORDER BY id DESC LIMIT ?2)",
                &[
                    text(job),
                    num((limit as usize).div_ceil(RUNS_PER_BLOCK) as f64),
                ],
            )
            .await?;
        let mut recent = Vec::new();
        let mut filed = Vec::with_capacity(blocks.len());
        // Id 0 is the job's own row: blocks are numbered from 1.
        for b in blocks {
            let runs: Vec<RunRow> =
                serde_json::from_str(&b.runs).map_err(internal("decode runs"))?;
            if b.id == 0.0 {
                recent = runs;
            } else {
                filed.push((b.id as i64, runs));
            }
        }
        Ok(newest_runs(recent, filed, limit as usize))
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
                self.stmt("DELETE FROM run_blocks WHERE job = ?1", &[text(name)])?,
                self.stmt("DELETE FROM jobs WHERE name = ?1", &[text(name)])?,
            ])
            .await?;
        Ok(Self::changes(r.get(1)) > 0)
    }
}
