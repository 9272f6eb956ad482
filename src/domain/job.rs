//! A monitored job: its name, the pings it receives, the runs they make, and what they say about
//! it (up, late, down, failed...), judged from facts and a `now` passed in.

use crate::domain::damping::{Tell, Told};
use crate::domain::error::{ApiError, Code};
use crate::domain::names::{ChartName, MAX_CHART_LEN};
use crate::domain::route::percent_decode;
use crate::domain::schedule::{Schedule, Zone};
use serde::{Deserialize, Serialize};

const DURATION_SUFFIX: &str = ".duration";
const EXIT_CODE_SUFFIX: &str = ".exit_code";
/// A job's charts are `{job}.duration` and `{job}.exit_code`, which must still be chart names.
pub const MAX_JOB_LEN: usize = MAX_CHART_LEN - EXIT_CODE_SUFFIX.len();
/// Runs started and not finished that a job remembers: enough for overlapping runs, and bounded
/// so that a job whose runs never report their end cannot grow its row.
pub const MAX_OPEN_STARTS: usize = 10;
pub const MAX_RID_LEN: usize = 64;

/// A job's name: a chart name short enough to carry the suffixes of its two charts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobName {
    name: ChartName,
    duration: ChartName,
    exit_code: ChartName,
}

impl JobName {
    pub fn parse(raw: &str) -> Result<JobName, ApiError> {
        let job_error = |e: ApiError| {
            ApiError::new(
                Code::InvalidPath,
                e.message.replace("chart name", "job name"),
            )
        };
        let name = ChartName::parse(raw).map_err(job_error)?;
        if raw.chars().count() > MAX_JOB_LEN {
            return Err(ApiError::new(
                Code::InvalidPath,
                format!(
                    "job name is longer than {MAX_JOB_LEN} characters (its chart {raw:.20}...{EXIT_CODE_SUFFIX} must fit in {MAX_CHART_LEN})"
                ),
            ));
        }
        Ok(JobName {
            duration: ChartName::parse(&format!("{raw}{DURATION_SUFFIX}")).map_err(job_error)?,
            exit_code: ChartName::parse(&format!("{raw}{EXIT_CODE_SUFFIX}")).map_err(job_error)?,
            name,
        })
    }

    pub fn as_str(&self) -> &str {
        self.name.as_str()
    }

    /// `{job}.duration`: how long each run took, in seconds.
    pub fn duration_chart(&self) -> &ChartName {
        &self.duration
    }

    /// `{job}.exit_code`: the exit status each run reported.
    pub fn exit_code_chart(&self) -> &ChartName {
        &self.exit_code
    }
}

impl std::fmt::Display for JobName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(raw: &str) -> Option<Outcome> {
        [Outcome::Success, Outcome::Failure]
            .into_iter()
            .find(|o| o.as_str() == raw)
    }
}

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingKind {
    /// `/ping/{job}`: a run finished well.
    Success,
    /// `/ping/{job}/start`: a run began; its end comes in another ping.
    Start,
    /// `/ping/{job}/fail`: a run failed.
    Fail,
    /// `/ping/{job}/{code}`: a run ended with this exit status; 0 is success, 1-255 failure.
    Exit(u8),
}

impl PingKind {
    /// How the run ended, or `None` for a start.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            PingKind::Start => None,
            PingKind::Success | PingKind::Exit(0) => Some(Outcome::Success),
            PingKind::Fail | PingKind::Exit(_) => Some(Outcome::Failure),
        }
    }
}

/// Splits the path after `/ping/` or `/api/v1/ping/`, still %-encoded, into the job and what the
/// ping says. Job names may hold `/`, so the last segment is read as the kind only if it is
/// `start`, `fail` or a number (which must then be an exit status, 0-255); otherwise it belongs to
/// the name, and a path of one segment is always a name. A job whose name ends in such a segment
/// (`backup/start`) is pinged with that slash encoded: `/ping/backup%2Fstart`.
pub fn parse_ping_path(rest: &str) -> Result<(JobName, PingKind), ApiError> {
    let (name, kind) = match rest.rsplit_once('/') {
        Some((name, last)) => match ping_kind(&percent_decode(last)?)? {
            Some(kind) => (name, kind),
            None => (rest, PingKind::Success),
        },
        None => (rest, PingKind::Success),
    };
    Ok((JobName::parse(&percent_decode(name)?)?, kind))
}

fn ping_kind(segment: &str) -> Result<Option<PingKind>, ApiError> {
    match segment {
        "start" => Ok(Some(PingKind::Start)),
        "fail" => Ok(Some(PingKind::Fail)),
        s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse::<u8>()
            .map(|code| Some(PingKind::Exit(code)))
            .map_err(|_| {
                ApiError::new(
                    Code::InvalidPath,
                    format!("exit status {s} is outside 0-255; send the command's $? as it is"),
                )
            }),
        _ => Ok(None),
    }
}

/// The `rid` a client gives a start and its finish so that overlapping runs pair up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    pub fn parse(raw: &str) -> Result<RunId, ApiError> {
        if raw.is_empty() || raw.chars().count() > MAX_RID_LEN || raw.chars().any(char::is_control)
        {
            return Err(ApiError::new(
                Code::InvalidPath,
                format!("rid must be 1 to {MAX_RID_LEN} characters, such as a UUID"),
            ));
        }
        Ok(RunId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A ping as it arrived: what it says, its run id if any, and when (unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Ping {
    pub kind: PingKind,
    pub rid: Option<RunId>,
    pub at: f64,
}

/// A run that began and has not reported its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<RunId>,
}

/// A finished run, as the charts record it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// When its start ping came, if one paired with it.
    pub started: Option<f64>,
    pub finished: f64,
    /// Seconds from start to finish; `None` without a start.
    pub duration: Option<f64>,
    /// Only what the ping reported: `/ping/{job}/{code}`.
    pub exit_code: Option<u8>,
    pub outcome: Outcome,
}

/// How many runs a job's row holds before they are filed together as one block, and how many a
/// block holds: a run then writes the job's row alone, and a tenth of a row for the block.
/// Migration 0013 packs runs by this number and its triggers keep `BLOCKS_KEPT` blocks: changing
/// either takes a new migration.
pub const RUNS_PER_BLOCK: usize = 10;
/// How many blocks a job keeps (the `NEW.id - 10` of migration 0013's triggers).
pub const BLOCKS_KEPT: usize = 10;
/// How many runs a job shows: every kept block's. A job stores 101 to 110 once it has that many.
pub const RUNS_SHOWN: usize = RUNS_PER_BLOCK * BLOCKS_KEPT;

/// A job's newest `limit` runs, newest first, from the runs in its row (`recent`, oldest first)
/// and its blocks as (number, runs oldest first), in any order.
pub fn newest_runs<T>(recent: Vec<T>, mut blocks: Vec<(i64, Vec<T>)>, limit: usize) -> Vec<T> {
    blocks.sort_unstable_by_key(|(id, _)| std::cmp::Reverse(*id));
    recent
        .into_iter()
        .rev()
        .chain(
            blocks
                .into_iter()
                .flat_map(|(_, runs)| runs.into_iter().rev()),
        )
        .take(limit)
        .collect()
}

/// A run's message: the first 10 KB of the ping's body (such as the last lines of a log), as
/// text, cut on a character boundary, and shorter where it would take more than 16 KB as JSON.
/// Runs are stored as JSON, ten to a row (`RUNS_PER_BLOCK`), and a control character takes six
/// bytes there (`\u001b`): without the second limit, a body of control characters would make a
/// job's row six times larger than ordinary logs do.
pub fn run_message(body: &[u8]) -> String {
    const MESSAGE_BYTES: usize = 10 * 1024;
    const JSON_BYTES: usize = 16 * 1024;
    let text = String::from_utf8_lossy(&body[..body.len().min(MESSAGE_BYTES + 4)]);
    let (mut bytes, mut json) = (0, 0);
    let mut end = 0;
    for c in text.chars() {
        let escaped = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        bytes += c.len_utf8();
        json += escaped;
        if bytes > MESSAGE_BYTES || json > JSON_BYTES {
            break;
        }
        end = bytes;
    }
    text[..end].to_string()
}

impl Run {
    /// The run in one line for a notification: outcome, exit code, duration and message.
    pub fn detail(&self, message: &str) -> String {
        let mut d = format!("last run: {}", self.outcome.as_str());
        if let Some(code) = self.exit_code {
            d.push_str(&format!(", exit code {code}"));
        }
        if let Some(s) = self.duration {
            d.push_str(&format!(", {s:.1} s"));
        }
        if !message.trim().is_empty() {
            d.push_str(": ");
            d.push_str(message.trim());
        }
        d
    }
}

/// What a job is, as its page and its alerts say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Has not finished a run since it was created or resumed.
    New,
    Up,
    /// Past due, within the grace.
    Late,
    /// Past due and the grace, or a run has gone on longer than the grace.
    Down,
    /// Its last run failed.
    Failed,
    /// A run has started and not yet finished, within the grace.
    Running,
    Paused,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::New,
        Status::Up,
        Status::Late,
        Status::Down,
        Status::Failed,
        Status::Running,
        Status::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Up => "up",
            Status::Late => "late",
            Status::Down => "down",
            Status::Failed => "failed",
            Status::Running => "running",
            Status::Paused => "paused",
        }
    }

    pub fn parse(raw: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    fn is_alarm(self) -> bool {
        matches!(self, Status::Down | Status::Failed)
    }
}

/// A change of a job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
}

impl Transition {
    /// `None` when nothing changed.
    pub fn between(from: Status, to: Status) -> Option<Transition> {
        (from != to).then_some(Transition { from, to })
    }

    /// Whether this change is worth a message: the job went down or failed (each change into
    /// either, so "failed" then "now hanging" are two messages), or came back up from one of them.
    /// The rest is routine: New to Up, Up to Late and back, into and out of Paused or Running.
    pub fn notifies(&self) -> bool {
        self.from != self.to
            && (self.to.is_alarm() || (self.to == Status::Up && self.from.is_alarm()))
    }
}

/// What is known of a job, from which its status is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// When monitoring began: the job's creation or its last resume. Nothing before it counts
    /// towards the status, so a resumed job starts afresh, like a new one.
    pub since: f64,
    pub paused: bool,
    /// When the last run finished: a success, fail or exit-status ping.
    pub last_ping: Option<f64>,
    pub last_outcome: Option<Outcome>,
    /// Runs started and not finished, oldest first, at most `MAX_OPEN_STARTS`.
    pub starts: Vec<Start>,
    /// The status last acted on (see `settle`), so that a change is noticed once.
    pub status: Status,
    /// What the channels were last told, and when (see `damping`).
    #[serde(default)]
    pub told: Told,
}

impl JobState {
    pub fn new(now: f64) -> JobState {
        JobState {
            since: now,
            paused: false,
            last_ping: None,
            last_outcome: None,
            starts: Vec::new(),
            status: Status::New,
            told: Told::default(),
        }
    }

    /// A state saved before jobs kept what was told: an alarm it is in was told when it began
    /// (so it is not told again, and its recovery is).
    pub fn backfill_told(&mut self) {
        if self.told.state.is_none() && self.status.is_alarm() {
            self.told.state = Some(self.status.as_str().to_string());
        }
    }

    /// Whether the status is told now, and as what change: into `down` or `failed`, or back to
    /// `up` from what was told as one of them, within `damping`'s limit; `change` is this
    /// judgement's own, whose `from` the message names when it led here. A change the hour has no
    /// room for is owed, and `check_at` comes back for it.
    pub fn tell(&mut self, change: Option<&Transition>, now: f64) -> Option<Transition> {
        let last = self.told.state.as_deref().and_then(Status::parse);
        let to = self.status;
        // Worth a message by the same rule as any change, counted from what was last told.
        let worth = Transition {
            from: last.unwrap_or(Status::New),
            to,
        }
        .notifies();
        match self.told.decide(to.as_str(), worth, now) {
            Tell::Now { .. } => Some(Transition {
                // This judgement's own change when there is one (`late` to `down`), else the
                // state last told (a change that waited for room in the hour).
                from: change.map(|c| c.from).or(last).unwrap_or(Status::New),
                to,
            }),
            Tell::Nothing => None,
        }
    }

    /// Takes a ping in, paused or not; for a finish, returns the run it ends. A start with a rid
    /// waits for the finish with that rid; without one, runs are taken to follow each other, so it
    /// replaces an open start without rid, and a finish without rid ends the latest open start.
    /// A finish with a rid no start has, or without any start, makes a run without a duration.
    pub fn record(mut self, ping: &Ping) -> (JobState, Option<Run>) {
        let Some(outcome) = ping.kind.outcome() else {
            self.starts.retain(|s| s.rid != ping.rid);
            self.starts.push(Start {
                at: ping.at,
                rid: ping.rid.clone(),
            });
            let excess = self.starts.len().saturating_sub(MAX_OPEN_STARTS);
            self.starts.drain(..excess);
            return (self, None);
        };
        let begun = |s: &Start| s.at <= ping.at;
        let paired = match &ping.rid {
            Some(rid) => self
                .starts
                .iter()
                .position(|s| s.rid.as_ref() == Some(rid) && begun(s)),
            None => self.starts.iter().rposition(begun),
        };
        let started = paired.map(|i| self.starts.remove(i).at);
        self.last_ping = Some(ping.at);
        self.last_outcome = Some(outcome);
        let run = Run {
            started,
            finished: ping.at,
            duration: started.map(|s| ping.at - s),
            exit_code: match ping.kind {
                PingKind::Exit(code) => Some(code),
                _ => None,
            },
            outcome,
        };
        (self, Some(run))
    }

    /// Pauses or resumes. Resuming starts afresh: the job is New again and waits a full period
    /// (and its grace) for a ping, so a pause for maintenance does not end in an alarm.
    pub fn set_paused(mut self, paused: bool, now: f64) -> JobState {
        if self.paused && !paused {
            self.since = now;
            // A resumed job starts afresh, as a new one: its next alarm is told again.
            self.told = Told::default();
        }
        self.paused = paused;
        self
    }

    /// The job's status at `now`, first rule that applies:
    /// 1. paused: Paused;
    /// 2. a run open longer than the grace: Down;
    /// 3. no run finished since creation or resume: Running if one is open, Down once the first
    ///    due time plus the grace has passed, else New. Healthchecks keeps such a job "new" for
    ///    ever; a job that never ran at all is what this feature is for, so it goes down;
    /// 4. the last run failed: Failed (also while a retry runs, so that it is announced once);
    /// 5. past due and the grace: Down (also while a late run runs, until it reports);
    /// 6. a run open: Running;
    /// 7. past due: Late;
    /// 8. Up.
    pub fn judge(&self, schedule: &Schedule, zone: &dyn Zone, now: f64) -> Status {
        if self.paused {
            return Status::Paused;
        }
        let grace = schedule.grace() as f64;
        let finished = self.last_ping.filter(|t| *t >= self.since);
        // The run in progress is the latest start after the last finish. An older open start
        // belongs to a run that overlapped or died without a word: it can still pair with a late
        // finish, but it does not hold the job down.
        let running = self
            .starts
            .last()
            .filter(|s| s.at >= finished.unwrap_or(self.since));
        if running.is_some_and(|s| now > s.at + grace) {
            return Status::Down;
        }
        let past = |due: Option<i64>, by: f64| due.is_some_and(|d| now > d as f64 + by);
        let since = self.since.floor() as i64;
        let Some(last) = finished else {
            return if running.is_some() {
                Status::Running
            } else if past(schedule.next_due(zone, None, since), grace) {
                Status::Down
            } else {
                Status::New
            };
        };
        if self.last_outcome == Some(Outcome::Failure) {
            return Status::Failed;
        }
        let due = schedule.next_due(zone, Some(last.floor() as i64), since);
        if past(due, grace) {
            Status::Down
        } else if running.is_some() {
            Status::Running
        } else if past(due, 0.0) {
            Status::Late
        } else {
            Status::Up
        }
    }

    /// When the scheduled check must look at this job next: the first instant after `now` at which
    /// its status can change without a ping (due, due plus grace, an open run's grace running out).
    /// `None` when only a ping can change it: paused, or down with nothing left to pass.
    pub fn check_at(&self, schedule: &Schedule, zone: &dyn Zone, now: f64) -> Option<i64> {
        if self.paused {
            return None;
        }
        let grace = schedule.grace();
        let since = self.since.floor() as i64;
        let finished = self.last_ping.filter(|t| *t >= self.since);
        let due = schedule.next_due(zone, finished.map(|t| t.floor() as i64), since);
        let open = self
            .starts
            .last()
            .filter(|s| s.at >= finished.unwrap_or(self.since))
            .map(|s| s.at.floor() as i64 + grace);
        // A change not told yet for want of room in the hour is told when there is room.
        let owed = self.told.owed_at.map(|t| t.ceil() as i64 - 1);
        [due, due.map(|d| d + grace), open, owed]
            .into_iter()
            .flatten()
            // A second later than the instant itself: the status changes *after* it.
            .map(|t| t + 1)
            .filter(|t| *t as f64 > now)
            .min()
    }

    /// Judges the job at `now` and keeps the status, returning the change if there is one. Running
    /// and Late do not replace a Down or Failed here: the alarm stays open until the job is Up
    /// again, so its recovery is announced even when a run came in between.
    pub fn settle(
        mut self,
        schedule: &Schedule,
        zone: &dyn Zone,
        now: f64,
    ) -> (JobState, Option<Transition>) {
        let judged = self.judge(schedule, zone, now);
        let status = match judged {
            Status::Running | Status::Late if self.status.is_alarm() => self.status,
            _ => judged,
        };
        let change = Transition::between(self.status, status);
        self.status = status;
        (self, change)
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;
    use crate::domain::schedule::FixedOffset;

    const T0: f64 = 1_767_225_600.0;

    fn hourly() -> Schedule {
        Schedule::Period {
            period: 3600,
            grace: 600,
        }
    }

    #[test]
    fn an_up_job_is_looked_at_when_it_falls_due_then_when_its_grace_ends() {
        let (s, _) = JobState::new(T0).record(&Ping {
            kind: PingKind::Success,
            rid: None,
            at: T0 + 10.0,
        });
        let z = FixedOffset(0);
        let first = s.check_at(&hourly(), &z, T0 + 20.0).unwrap();
        assert_eq!(first, T0 as i64 + 10 + 3600 + 1);
        let second = s.check_at(&hourly(), &z, first as f64).unwrap();
        assert_eq!(second, T0 as i64 + 10 + 3600 + 600 + 1);
        assert_eq!(
            s.check_at(&hourly(), &z, second as f64),
            None,
            "down: only a ping helps"
        );
    }

    #[test]
    fn a_paused_job_is_never_looked_at() {
        let s = JobState::new(T0).set_paused(true, T0);
        assert_eq!(s.check_at(&hourly(), &FixedOffset(0), T0), None);
    }

    #[test]
    fn a_runs_message_is_the_first_10_kb_cut_on_a_character_boundary() {
        assert_eq!(run_message(b"disk full\n").as_str(), "disk full\n");
        let long = "é".repeat(6000);
        let m = run_message(long.as_bytes());
        assert!(m.len() <= 10 * 1024 && m.len() >= 10 * 1024 - 1);
        assert!(m.chars().all(|c| c == 'é'));
        assert_eq!(run_message(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn a_runs_message_of_control_characters_stops_at_16_kb_as_json() {
        let m = run_message(&[0x1b; 10 * 1024]);
        assert_eq!(m.len(), 16 * 1024 / 6);
        assert!(serde_json::to_string(&m).unwrap().len() <= 16 * 1024 + 2);
        // Ordinary logs, colour codes and all, keep their first 10 KB.
        let log = "\u{1b}[31merror\u{1b}[0m: disk full\n".repeat(1000);
        assert_eq!(run_message(log.as_bytes()).len(), 10 * 1024);
    }

    #[test]
    fn a_run_is_told_in_one_line_with_its_exit_code_duration_and_message() {
        let run = Run {
            started: Some(T0),
            finished: T0 + 12.34,
            duration: Some(12.34),
            exit_code: Some(2),
            outcome: Outcome::Failure,
        };
        assert_eq!(
            run.detail("  tar: disk full\n"),
            "last run: failure, exit code 2, 12.3 s: tar: disk full"
        );
    }

    #[test]
    fn the_state_survives_a_round_trip_through_json() {
        let (s, _) = JobState::new(T0).record(&Ping {
            kind: PingKind::Start,
            rid: Some(RunId::parse("r1").unwrap()),
            at: T0 + 5.0,
        });
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<JobState>(&text).unwrap(), s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::{CronExpr, FixedOffset};

    const HOUR: f64 = 3600.0;
    const DAY: f64 = 86_400.0;
    const T0: f64 = 1_767_225_600.0; // 2026-01-01 00:00 UTC
    const UTC: FixedOffset = FixedOffset(0);

    #[test]
    fn a_jobs_runs_come_newest_first_from_its_row_then_its_blocks_newest_first() {
        let blocks = vec![(1, vec![1, 2, 3]), (3, vec![7, 8, 9]), (2, vec![4, 5, 6])];
        assert_eq!(
            newest_runs(vec![10, 11], blocks.clone(), 100),
            vec![11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        assert_eq!(newest_runs(vec![10, 11], blocks, 4), vec![11, 10, 9, 8]);
        assert_eq!(
            newest_runs(Vec::<u8>::new(), vec![(1, vec![1, 2])], 5),
            vec![2, 1]
        );
    }

    fn hourly() -> Schedule {
        Schedule::Period {
            period: 3600,
            grace: 600,
        }
    }

    fn ping(kind: PingKind, at: f64) -> Ping {
        Ping {
            kind,
            rid: None,
            at,
        }
    }

    fn with_rid(kind: PingKind, rid: &str, at: f64) -> Ping {
        Ping {
            kind,
            rid: Some(RunId::parse(rid).unwrap()),
            at,
        }
    }

    /// A job created at T0 that received these pings.
    fn job(pings: &[Ping]) -> JobState {
        pings
            .iter()
            .fold(JobState::new(T0), |state, p| state.record(p).0)
    }

    fn status(pings: &[Ping], now: f64) -> Status {
        job(pings).judge(&hourly(), &UTC, now)
    }

    fn path(rest: &str) -> (String, PingKind) {
        let (name, kind) = parse_ping_path(rest).unwrap();
        (name.as_str().to_string(), kind)
    }

    #[test]
    fn a_job_name_names_its_two_charts() {
        let name = JobName::parse("nightly/backup").unwrap();
        assert_eq!(name.duration_chart().as_str(), "nightly/backup.duration");
        assert_eq!(name.exit_code_chart().as_str(), "nightly/backup.exit_code");
    }

    #[test]
    fn a_job_name_leaves_room_for_exit_code_in_its_chart() {
        assert!(JobName::parse(&"é".repeat(118)).is_ok());
        let e = JobName::parse(&"a".repeat(119)).unwrap_err();
        assert!(e.message.contains("118"), "{}", e.message);
    }

    #[test]
    fn a_bad_job_name_says_job_not_chart() {
        for raw in ["", "a\nb"] {
            let e = JobName::parse(raw).unwrap_err();
            assert_eq!(e.code, Code::InvalidPath);
            assert!(e.message.contains("job name"), "{}", e.message);
        }
    }

    #[test]
    fn the_last_segment_is_the_kind_when_it_is_start_fail_or_an_exit_status() {
        assert_eq!(path("backup"), ("backup".into(), PingKind::Success));
        assert_eq!(path("backup/start"), ("backup".into(), PingKind::Start));
        assert_eq!(path("backup/fail"), ("backup".into(), PingKind::Fail));
        assert_eq!(path("backup/0"), ("backup".into(), PingKind::Exit(0)));
        assert_eq!(path("backup/255"), ("backup".into(), PingKind::Exit(255)));
        assert_eq!(
            path("db/nightly/start"),
            ("db/nightly".into(), PingKind::Start)
        );
        assert_eq!(
            path("db/nightly/7"),
            ("db/nightly".into(), PingKind::Exit(7))
        );
    }

    #[test]
    fn any_other_last_segment_and_a_single_segment_belong_to_the_name() {
        assert_eq!(path("db/nightly"), ("db/nightly".into(), PingKind::Success));
        assert_eq!(path("start"), ("start".into(), PingKind::Success));
        assert_eq!(path("42"), ("42".into(), PingKind::Success));
        assert_eq!(path("db/-1"), ("db/-1".into(), PingKind::Success));
        assert_eq!(path("a%20b/Start"), ("a b/Start".into(), PingKind::Success));
    }

    #[test]
    fn an_encoded_slash_keeps_a_kind_like_segment_in_the_name() {
        assert_eq!(path("a%2Fstart"), ("a/start".into(), PingKind::Success));
        assert_eq!(path("a%2Fstart/fail"), ("a/start".into(), PingKind::Fail));
    }

    #[test]
    fn an_exit_status_above_255_is_a_clear_400() {
        for rest in ["backup/256", "backup/99999999999999999999"] {
            let e = parse_ping_path(rest).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains("0-255"), "{}", e.message);
        }
        assert!(parse_ping_path("backup/%zz").is_err());
    }

    #[test]
    fn exit_status_zero_is_success_and_any_other_a_failure() {
        assert_eq!(PingKind::Exit(0).outcome(), Some(Outcome::Success));
        assert_eq!(PingKind::Exit(1).outcome(), Some(Outcome::Failure));
        assert_eq!(PingKind::Fail.outcome(), Some(Outcome::Failure));
        assert_eq!(PingKind::Start.outcome(), None);
    }

    #[test]
    fn a_run_id_is_short_and_printable() {
        assert!(RunId::parse("0b7c7f4e-2f1a-4c51-9a55-1d1f4b1a2c3d").is_ok());
        assert!(RunId::parse("").is_err());
        assert!(RunId::parse(&"x".repeat(65)).is_err());
        assert!(RunId::parse("a\tb").is_err());
    }

    #[test]
    fn statuses_and_outcomes_read_back_from_their_text() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::Failed.as_str(), "failed");
        assert_eq!(Outcome::parse("failure"), Some(Outcome::Failure));
        assert_eq!(Status::parse("Up"), None);
    }

    #[test]
    fn a_job_never_pinged_is_new() {
        assert_eq!(status(&[], T0 + HOUR + 599.0), Status::New);
    }

    #[test]
    fn a_new_job_past_its_first_due_time_and_grace_is_down() {
        assert_eq!(status(&[], T0 + HOUR + 601.0), Status::Down);
    }

    #[test]
    fn a_paused_job_is_paused_whatever_its_pings_say() {
        let state = job(&[ping(PingKind::Fail, T0)]).set_paused(true, T0);
        assert_eq!(state.judge(&hourly(), &UTC, T0 + DAY), Status::Paused);
    }

    #[test]
    fn a_job_pinged_within_its_period_is_up() {
        assert_eq!(
            status(&[ping(PingKind::Success, T0 + 10.0)], T0 + HOUR),
            Status::Up
        );
    }

    #[test]
    fn a_job_past_due_is_late_and_past_its_grace_is_down() {
        let pings = [ping(PingKind::Success, T0)];
        assert_eq!(status(&pings, T0 + HOUR), Status::Up);
        assert_eq!(status(&pings, T0 + HOUR + 1.0), Status::Late);
        assert_eq!(status(&pings, T0 + HOUR + 600.0), Status::Late);
        assert_eq!(status(&pings, T0 + HOUR + 601.0), Status::Down);
    }

    #[test]
    fn a_job_whose_last_run_failed_is_failed() {
        let pings = [
            ping(PingKind::Success, T0),
            ping(PingKind::Exit(2), T0 + 60.0),
        ];
        assert_eq!(status(&pings, T0 + 120.0), Status::Failed);
    }

    #[test]
    fn a_started_run_is_running_until_it_outlasts_the_grace() {
        let pings = [
            ping(PingKind::Success, T0),
            ping(PingKind::Start, T0 + HOUR),
        ];
        assert_eq!(status(&pings, T0 + HOUR + 600.0), Status::Running);
        assert_eq!(status(&pings, T0 + HOUR + 601.0), Status::Down);
    }

    #[test]
    fn a_first_run_in_progress_is_running_not_new() {
        assert_eq!(
            status(&[ping(PingKind::Start, T0 + 5.0)], T0 + 60.0),
            Status::Running
        );
    }

    #[test]
    fn a_late_run_that_has_started_stays_down_until_it_reports() {
        let pings = [
            ping(PingKind::Success, T0),
            ping(PingKind::Start, T0 + 2.0 * HOUR),
        ];
        assert_eq!(status(&pings, T0 + 2.0 * HOUR + 60.0), Status::Down);
    }

    #[test]
    fn a_cron_job_is_judged_by_its_zones_wall_clock() {
        let schedule = Schedule::Cron {
            expr: CronExpr::parse("0 3 * * *").unwrap(),
            tz: "Etc/GMT-2".into(),
            grace: 1800,
        };
        let zone = FixedOffset(7200); // 03:00 there is 01:00 UTC
        let state = job(&[ping(PingKind::Success, T0 + HOUR)]);
        assert_eq!(state.judge(&schedule, &zone, T0 + DAY + HOUR), Status::Up);
        assert_eq!(
            state.judge(&schedule, &zone, T0 + DAY + HOUR + 60.0),
            Status::Late
        );
        assert_eq!(
            state.judge(&schedule, &zone, T0 + DAY + HOUR + 1801.0),
            Status::Down
        );
    }

    #[test]
    fn a_start_and_its_finish_make_a_run_with_a_duration() {
        let (state, run) =
            job(&[ping(PingKind::Start, T0)]).record(&ping(PingKind::Exit(3), T0 + 42.5));
        assert_eq!(
            run,
            Some(Run {
                started: Some(T0),
                finished: T0 + 42.5,
                duration: Some(42.5),
                exit_code: Some(3),
                outcome: Outcome::Failure,
            })
        );
        assert!(state.starts.is_empty());
        assert_eq!(state.last_ping, Some(T0 + 42.5));
    }

    #[test]
    fn a_finish_without_a_start_has_no_duration() {
        let (_, run) = JobState::new(T0).record(&ping(PingKind::Success, T0 + 5.0));
        let run = run.unwrap();
        assert_eq!(
            (run.started, run.duration, run.exit_code),
            (None, None, None)
        );
        assert_eq!(run.outcome, Outcome::Success);
    }

    #[test]
    fn a_start_alone_makes_no_run_and_does_not_count_as_a_ping() {
        let (state, run) = JobState::new(T0).record(&ping(PingKind::Start, T0));
        assert_eq!(run, None);
        assert_eq!(state.last_ping, None);
        assert_eq!(state.starts.len(), 1);
    }

    #[test]
    fn overlapping_runs_pair_with_their_own_start_by_rid() {
        let state = job(&[
            with_rid(PingKind::Start, "a", T0),
            with_rid(PingKind::Start, "b", T0 + 10.0),
        ]);
        let (state, run) = state.record(&with_rid(PingKind::Success, "a", T0 + 30.0));
        assert_eq!(run.unwrap().duration, Some(30.0));
        let (state, run) = state.record(&with_rid(PingKind::Success, "b", T0 + 35.0));
        assert_eq!(run.unwrap().duration, Some(25.0));
        assert!(state.starts.is_empty());
    }

    #[test]
    fn a_finish_with_an_unknown_rid_has_no_duration_and_leaves_other_starts_open() {
        let state = job(&[with_rid(PingKind::Start, "a", T0)]);
        let (state, run) = state.record(&with_rid(PingKind::Success, "z", T0 + 5.0));
        assert_eq!(run.unwrap().duration, None);
        assert_eq!(state.starts.len(), 1);
    }

    #[test]
    fn without_rid_a_finish_pairs_with_the_latest_start() {
        let state = job(&[
            with_rid(PingKind::Start, "a", T0),
            with_rid(PingKind::Start, "b", T0 + 10.0),
        ]);
        let (state, run) = state.record(&ping(PingKind::Success, T0 + 12.0));
        assert_eq!(run.unwrap().started, Some(T0 + 10.0));
        assert_eq!(state.starts.len(), 1);
    }

    #[test]
    fn a_new_start_without_rid_replaces_the_open_one() {
        let state = job(&[ping(PingKind::Start, T0), ping(PingKind::Start, T0 + 60.0)]);
        assert_eq!(
            state.starts,
            [Start {
                at: T0 + 60.0,
                rid: None
            }]
        );
    }

    #[test]
    fn open_starts_are_capped_and_the_oldest_dropped() {
        let pings: Vec<Ping> = (0..12)
            .map(|i| with_rid(PingKind::Start, &i.to_string(), T0 + f64::from(i)))
            .collect();
        let state = job(&pings);
        assert_eq!(state.starts.len(), MAX_OPEN_STARTS);
        assert_eq!(state.starts[0].at, T0 + 2.0);
    }

    #[test]
    fn a_run_that_died_without_a_word_does_not_hold_the_job_down() {
        let pings = [
            with_rid(PingKind::Start, "crashed", T0),
            with_rid(PingKind::Start, "next", T0 + HOUR),
            with_rid(PingKind::Success, "next", T0 + HOUR + 60.0),
        ];
        assert_eq!(status(&pings, T0 + HOUR + 120.0), Status::Up);
    }

    #[test]
    fn resuming_starts_afresh_like_a_new_job() {
        let state = job(&[ping(PingKind::Fail, T0)])
            .set_paused(true, T0 + 60.0)
            .set_paused(false, T0 + DAY);
        assert_eq!(state.since, T0 + DAY);
        assert_eq!(state.judge(&hourly(), &UTC, T0 + DAY + HOUR), Status::New);
        assert_eq!(
            state.judge(&hourly(), &UTC, T0 + DAY + HOUR + 601.0),
            Status::Down
        );
        // Resuming a job that is not paused changes nothing.
        assert_eq!(
            state.clone().set_paused(false, T0 + 2.0 * DAY).since,
            T0 + DAY
        );
    }

    #[test]
    fn only_going_down_or_failing_and_coming_back_up_from_them_notify() {
        use Status::*;
        let notifies = |from, to| Transition { from, to }.notifies();
        for (from, to) in [
            (Up, Down),
            (Late, Down),
            (New, Down),
            (Up, Failed),
            (Running, Failed),
        ] {
            assert!(notifies(from, to), "{from:?} -> {to:?}");
        }
        assert!(notifies(Down, Up) && notifies(Failed, Up));
        assert!(notifies(Failed, Down) && notifies(Down, Failed));
        for (from, to) in [
            (New, Up),
            (Up, Late),
            (Late, Up),
            (Up, Running),
            (Running, Up),
            (Up, Paused),
            (Down, Paused),
            (Paused, New),
            (Down, Down),
        ] {
            assert!(!notifies(from, to), "{from:?} -> {to:?}");
        }
        assert_eq!(Transition::between(Up, Up), None);
    }

    #[test]
    fn a_down_job_that_runs_again_announces_its_recovery_once() {
        let schedule = hourly();
        let state = job(&[ping(PingKind::Success, T0)]);
        let (state, change) = state.settle(&schedule, &UTC, T0 + 30.0);
        assert_eq!(change.map(|c| c.notifies()), Some(false), "New -> Up");
        let (state, change) = state.settle(&schedule, &UTC, T0 + 2.0 * HOUR);
        assert!(change.unwrap().notifies(), "Up -> Down");
        // A run starts while the job is down: no message, and the alarm stays open.
        let state = state
            .record(&ping(PingKind::Start, T0 + 2.0 * HOUR + 60.0))
            .0;
        let (state, change) = state.settle(&schedule, &UTC, T0 + 2.0 * HOUR + 90.0);
        assert_eq!((change, state.status), (None, Status::Down));
        let state = state
            .record(&ping(PingKind::Success, T0 + 2.0 * HOUR + 120.0))
            .0;
        let (state, change) = state.settle(&schedule, &UTC, T0 + 2.0 * HOUR + 130.0);
        assert_eq!(
            change,
            Some(Transition {
                from: Status::Down,
                to: Status::Up
            })
        );
        assert!(change.unwrap().notifies());
        let (_, change) = state.settle(&schedule, &UTC, T0 + 2.0 * HOUR + 140.0);
        assert_eq!(change, None);
    }

    #[test]
    fn a_job_that_fails_every_run_is_announced_once() {
        let schedule = hourly();
        let mut state = JobState::new(T0);
        let mut messages = 0;
        for run in 0..5 {
            let begin = T0 + f64::from(run) * HOUR;
            for (p, now) in [
                (ping(PingKind::Start, begin), begin + 1.0),
                (ping(PingKind::Fail, begin + 30.0), begin + 31.0),
            ] {
                let change;
                (state, change) = state.record(&p).0.settle(&schedule, &UTC, now);
                messages += usize::from(change.is_some_and(|c| c.notifies()));
            }
        }
        assert_eq!(messages, 1);
        assert_eq!(state.status, Status::Failed);
    }

    #[test]
    fn a_job_that_flaps_is_told_ten_times_an_hour_and_the_state_it_ends_in_when_there_is_room() {
        let mut s = JobState::new(0.0);
        let mut told = Vec::new();
        for i in 0..12 {
            s.status = if i % 2 == 0 {
                Status::Failed
            } else {
                Status::Up
            };
            if let Some(t) = s.tell(None, i as f64 * 60.0) {
                told.push(t);
            }
        }
        assert_eq!(told.len(), 10);
        assert_eq!((told[0].from, told[0].to), (Status::New, Status::Failed));
        // The twelfth change (Up) is what was told last: nothing owed. One more failure is owed.
        assert_eq!(s.told.owed_at, None);
        s.status = Status::Failed;
        assert_eq!(s.tell(None, 900.0), None);
        assert_eq!(s.told.owed_at, Some(3600.0));
        assert_eq!(
            s.check_at(&Schedule::default(), &FixedOffset(0), 900.0),
            Some(3600)
        );
        let t = s.tell(None, 3600.0).unwrap();
        assert_eq!((t.from, t.to), (Status::Up, Status::Failed));
        // A state saved before `told` existed: its alarm counts as told, its recovery is told.
        let mut old: JobState = serde_json::from_str(
            r#"{"since":0,"paused":false,"last_ping":null,"last_outcome":null,"starts":[],"status":"failed"}"#,
        )
        .unwrap();
        old.backfill_told();
        assert_eq!(old.tell(None, 10.0), None);
        old.status = Status::Up;
        assert_eq!(old.tell(None, 20.0).map(|t| t.from), Some(Status::Failed));
        // A resumed job starts afresh: its next failure is told even if one was told before.
        let mut resumed = s.clone().set_paused(true, 4000.0).set_paused(false, 4100.0);
        resumed.status = Status::Failed;
        assert_eq!(resumed.told.state, None);
        assert!(resumed.tell(None, 4200.0).is_some());
        // Late and running are not worth a word, and New to Up is routine.
        let mut quiet = JobState::new(0.0);
        for status in [Status::Late, Status::Running, Status::Up] {
            quiet.status = status;
            assert_eq!(quiet.tell(None, 1.0), None);
        }
    }
}
