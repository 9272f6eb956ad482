//! When a job should ping: its schedule (a period, or a cron expression read on a time zone's wall
//! clock) with its grace, parsed from a request body, and the next instant the job is due.

use crate::domain::error::{strict_body_error, ApiError, Code};
use crate::domain::notify::parse_channel_list;
use crate::domain::time::{civil_from_days, days_from_civil, duration_value, DAY, HOUR, MINUTE};
use serde::Deserialize;
use serde_json::Value;

/// What a duration outside its bounds is told.
const JOBS_NOTE: &str = "; jobs are checked once a minute";

/// A new job expects a ping a day, and waits an hour more before it calls the job down.
pub const DEFAULT_PERIOD: i64 = DAY;
pub const DEFAULT_GRACE: i64 = HOUR;
/// Jobs are looked at by the Worker's cron trigger, at most once a minute: a shorter period could
/// not be watched.
pub const MIN_PERIOD: i64 = MINUTE;
pub const MAX_PERIOD: i64 = 365 * DAY;
/// At least a minute, for the same reason, and because a ping crosses the network between two
/// machines' clocks: less would raise false alarms.
pub const MIN_GRACE: i64 = MINUTE;
/// More than a month leaves a job unwatched in all but name; it is likelier a slip of the unit.
pub const MAX_GRACE: i64 = 30 * DAY;
/// How far ahead `next_after` looks. Ten years covers a 29 February across a century year that has
/// none (2096 to 2104), and bounds the search for an expression that never matches.
const SEARCH_DAYS: i64 = 10 * 366;
/// Instants beyond about ±300,000 years are refused rather than risking overflow in the calendar.
const MAX_INSTANT: i64 = 10_000_000_000_000;
const MAX_CRON_LEN: usize = 128;
const MAX_TZ_LEN: usize = 64;

/// When pings are expected, and how long after that a missing one still is not an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// A ping every `period` seconds after the last one.
    Period { period: i64, grace: i64 },
    /// A ping at each instant `expr` matches on the wall clock of `tz`, an IANA zone name.
    Cron {
        expr: CronExpr,
        tz: String,
        grace: i64,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Period {
            period: DEFAULT_PERIOD,
            grace: DEFAULT_GRACE,
        }
    }
}

impl Schedule {
    pub fn grace(&self) -> i64 {
        match self {
            Schedule::Period { grace, .. } | Schedule::Cron { grace, .. } => *grace,
        }
    }

    /// The zone whose wall clock the schedule is read on; a period needs none.
    pub fn tz(&self) -> Option<&str> {
        match self {
            Schedule::Period { .. } => None,
            Schedule::Cron { tz, .. } => Some(tz),
        }
    }

    fn with_grace(&self, grace: i64) -> Schedule {
        match self {
            Schedule::Period { period, .. } => Schedule::Period {
                period: *period,
                grace,
            },
            Schedule::Cron { expr, tz, .. } => Schedule::Cron {
                expr: expr.clone(),
                tz: tz.clone(),
                grace,
            },
        }
    }

    /// The instant (unix seconds) the next ping is due, counted from the last ping or, before any,
    /// from `created`. "Due" is the moment the job should have pinged by: until then it is up,
    /// after it late, and after it plus the grace down. A period is due one period after; a cron
    /// schedule at its first instant strictly after. `None`: a cron expression that does not match
    /// within ten years, so the job is never due.
    pub fn next_due(&self, zone: &dyn Zone, last_ping: Option<i64>, created: i64) -> Option<i64> {
        let from = last_ping.unwrap_or(created);
        match self {
            Schedule::Period { period, .. } => from.checked_add(*period),
            Schedule::Cron { expr, .. } => next_after(expr, zone, from),
        }
    }

    /// The schedule as the API shows it, durations in seconds:
    /// `{"period":86400,"grace":3600}` or `{"cron":"0 3 * * *","tz":"Europe/Berlin","grace":1800}`.
    pub fn to_json(&self) -> Value {
        match self {
            Schedule::Period { period, grace } => {
                serde_json::json!({ "period": period, "grace": grace })
            }
            Schedule::Cron { expr, tz, grace } => {
                serde_json::json!({ "cron": expr.as_str(), "tz": tz, "grace": grace })
            }
        }
    }
}

/// What `PUT /api/v1/jobs/{job}` asks to change. What the body leaves out stays as it is; a new
/// job whose body names no schedule gets `Schedule::default()` (a ping a day, an hour's grace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// The whole schedule after the change, or `None` if the body did not touch it.
    pub schedule: Option<Schedule>,
    pub paused: Option<bool>,
    /// `Some(None)`: notify every channel again; `Some(Some(ids))`: only these; `None`: unchanged.
    pub channels: Option<Option<Vec<String>>>,
}

impl JobSettings {
    /// Reads `{"period":"1h","grace":"10m"}` or `{"cron":"0 3 * * *","tz":"Europe/Berlin"}`, each
    /// with an optional `"paused"`. `current` is the job's schedule (`None` for a new job): a body
    /// that sends only `grace`, or only `tz` for a cron job, changes just that. An empty body is `{}`,
    /// so a bare `PUT` creates a job with the defaults.
    pub fn parse(body: &[u8], current: Option<&Schedule>) -> Result<JobSettings, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            period: Option<Value>,
            cron: Option<Value>,
            tz: Option<Value>,
            grace: Option<Value>,
            paused: Option<Value>,
            // Present as null (every channel) differs from absent (unchanged).
            #[serde(default, deserialize_with = "present")]
            channels: Option<Value>,
        }
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            strict_body_error(
                &e,
                |field| {
                    format!(
                        "unknown field {field:?}; a job has period or cron (with tz), grace, paused and channels"
                    )
                },
                Some(
                    r#"send a JSON object such as {"period":"1h","grace":"10m"} or {"cron":"0 3 * * *","tz":"Europe/Berlin"}"#,
                ),
            )
        })?;
        let grace = raw
            .grace
            .map(|v| duration_value(&v, "grace", MIN_GRACE, MAX_GRACE, JOBS_NOTE))
            .transpose()?;
        let tz = raw.tz.map(|v| parse_tz(&v)).transpose()?;
        let paused = match raw.paused {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                return Err(ApiError::new(
                    Code::InvalidBody,
                    "paused must be true or false",
                ))
            }
        };
        let fallback = Schedule::default();
        let current = current.unwrap_or(&fallback);
        let kept_grace = grace.unwrap_or_else(|| current.grace());
        let schedule = match (raw.period, raw.cron, tz) {
            (Some(_), Some(_), _) => {
                return Err(ApiError::new(
                    Code::InvalidBody,
                    "give period or cron, not both",
                ))
            }
            (Some(_), None, Some(_)) => return Err(tz_without_cron()),
            (Some(period), None, None) => Some(Schedule::Period {
                period: duration_value(&period, "period", MIN_PERIOD, MAX_PERIOD, JOBS_NOTE)?,
                grace: kept_grace,
            }),
            (None, Some(cron), tz) => {
                let text = cron.as_str().ok_or_else(|| {
                    ApiError::new(
                        Code::InvalidBody,
                        r#"cron must be a string such as "0 3 * * *""#,
                    )
                })?;
                Some(Schedule::Cron {
                    expr: CronExpr::parse(text)?,
                    tz: tz
                        .or_else(|| current.tz().map(str::to_string))
                        .unwrap_or_else(|| "UTC".to_string()),
                    grace: kept_grace,
                })
            }
            (None, None, Some(tz)) => match current {
                Schedule::Cron { expr, .. } => Some(Schedule::Cron {
                    expr: expr.clone(),
                    tz,
                    grace: kept_grace,
                }),
                Schedule::Period { .. } => return Err(tz_without_cron()),
            },
            (None, None, None) => grace.map(|g| current.with_grace(g)),
        };
        let channels = raw.channels.as_ref().map(parse_channel_list).transpose()?;
        Ok(JobSettings {
            schedule,
            paused,
            channels,
        })
    }
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn tz_without_cron() -> ApiError {
    ApiError::new(
        Code::InvalidBody,
        "tz is the zone of a cron schedule; send it with cron (a period needs no zone)",
    )
}

/// An IANA zone name by its shape only (`Europe/Berlin`, `America/Argentina/Buenos_Aires`,
/// `Etc/GMT+5`, `UTC`): the domain has no tz database, so the platform must confirm the zone exists.
fn parse_tz(v: &Value) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            Code::InvalidBody,
            r#"tz must be an IANA time zone name such as "Europe/Berlin" or "UTC""#,
        )
    };
    let tz = v.as_str().ok_or_else(bad)?;
    let shaped = !tz.is_empty()
        && tz.len() <= MAX_TZ_LEN
        && tz.starts_with(|c: char| c.is_ascii_alphabetic())
        && !tz.contains("..")
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if shaped {
        Ok(tz.to_string())
    } else {
        Err(bad())
    }
}

/// A time zone as a schedule needs it: how far its wall clock is from UTC at an instant. The
/// platform answers this with the JavaScript runtime's Intl API, so the Worker carries no tz
/// database. Zones are assumed to change their offset at most once in any three days, which holds
/// for every zone in use.
pub trait Zone {
    /// Seconds east of UTC at the instant `utc` (unix seconds): 7200 for Berlin in summer.
    fn offset_at(&self, utc: i64) -> i64;
}

/// A zone whose offset never changes; `FixedOffset(0)` is UTC and needs no call into the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedOffset(pub i64);

impl Zone for FixedOffset {
    fn offset_at(&self, _utc: i64) -> i64 {
        self.0
    }
}

/// A standard five-field cron expression: minute, hour, day of month, month, day of week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    /// As it was given, trimmed, so that it reads back the way the user wrote it.
    text: String,
    minutes: u64,
    hours: u64,
    /// Bits 1 to 31.
    days: u64,
    /// Bits 1 to 12.
    months: u64,
    /// Bits 0 (Sunday) to 6.
    weekdays: u64,
    /// Vixie cron's rule: when both day fields are restricted (neither starts with `*`), a day
    /// matches if either does; otherwise both must.
    either_day: bool,
    /// Neither minute nor hour starts with `*`: a time of day, which daylight-saving changes must
    /// not skip or repeat (see `next_after`).
    time_of_day: bool,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for the values from `min` on.
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    },
    // 7 is Sunday too, as in Vixie cron; it is folded into 0 after parsing.
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    },
];

impl CronExpr {
    /// Reads `*`, lists `a,b`, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (a to the end),
    /// JAN-DEC and SUN-SAT in any case, 7 as Sunday, and @hourly, @daily (@midnight), @weekly,
    /// @monthly, @yearly (@annually). An expression that can never match, such as `0 0 31 2 *`,
    /// is refused: a job on it would never be due.
    pub fn parse(raw: &str) -> Result<CronExpr, ApiError> {
        let expr = Self::fields(raw)?;
        if !expr.either_day && !expr.some_month_has_a_day() {
            return Err(cron_error(
                "day-of-month",
                "none of these days occurs in the chosen months (like 31 February), so it never runs",
            ));
        }
        Ok(expr)
    }

    /// The parse without the check that the expression can match at all.
    fn fields(raw: &str) -> Result<CronExpr, ApiError> {
        let text = raw.trim();
        if text.len() > MAX_CRON_LEN {
            return Err(ApiError::new(
                Code::InvalidBody,
                format!("cron must be at most {MAX_CRON_LEN} characters"),
            ));
        }
        let expanded = match text.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => {
                return Err(ApiError::new(
                    Code::InvalidBody,
                    format!("cron {text:?} is not known; use @hourly, @daily, @weekly, @monthly or @yearly, or five fields"),
                ))
            }
            _ => text,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = parts[..] else {
            return Err(ApiError::new(
                Code::InvalidBody,
                format!(
                    "cron has five fields (minute hour day-of-month month day-of-week), not {}; seconds and years are not supported",
                    parts.len()
                ),
            ));
        };
        let mut weekdays = field(dow, &FIELDS[4])?;
        if weekdays & 1 << 7 != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        Ok(CronExpr {
            text: text.to_string(),
            minutes: field(minute, &FIELDS[0])?,
            hours: field(hour, &FIELDS[1])?,
            days: field(dom, &FIELDS[2])?,
            months: field(month, &FIELDS[3])?,
            weekdays,
            either_day: !dom.starts_with('*') && !dow.starts_with('*'),
            time_of_day: !minute.starts_with('*') && !hour.starts_with('*'),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn some_month_has_a_day(&self) -> bool {
        (1..=12u32)
            .filter(|m| self.months & 1 << m != 0)
            .any(|m| self.days & ((1u64 << (days_in_month(2000, m) + 1)) - 2) != 0)
    }

    fn day_matches(&self, day: i64, dom: u32) -> bool {
        let by_date = self.days & 1 << dom != 0;
        let by_weekday = self.weekdays & 1 << weekday(day) != 0;
        if self.either_day {
            by_date || by_weekday
        } else {
            by_date && by_weekday
        }
    }

    /// The first wall-clock time at or after `from` (local seconds, as if the zone were UTC) that
    /// matches, skipping whole months, days and hours that cannot; `None` past `limit`.
    fn next_wall(&self, from: i64, limit: i64) -> Option<i64> {
        let mut t = from.div_euclid(MINUTE) * MINUTE;
        if t < from {
            t += MINUTE;
        }
        while t <= limit {
            let day = t.div_euclid(DAY);
            let secs = t.rem_euclid(DAY);
            let (y, m, d) = civil_from_days(day);
            if self.months & 1 << m == 0 {
                t = if m == 12 {
                    days_from_civil(y + 1, 1, 1)
                } else {
                    days_from_civil(y, m + 1, 1)
                } * DAY;
                continue;
            }
            if !self.day_matches(day, d) {
                t = (day + 1) * DAY;
                continue;
            }
            let hour = secs / HOUR;
            match next_bit(self.hours, hour) {
                None => {
                    t = (day + 1) * DAY;
                    continue;
                }
                Some(h) if h != hour => {
                    t = day * DAY + h * HOUR;
                    continue;
                }
                Some(_) => {}
            }
            match next_bit(self.minutes, secs % HOUR / MINUTE) {
                None => t = day * DAY + (hour + 1) * HOUR,
                Some(minute) => return Some(day * DAY + hour * HOUR + minute * MINUTE),
            }
        }
        None
    }
}

fn cron_error(field: &str, what: &str) -> ApiError {
    ApiError::new(Code::InvalidBody, format!("cron {field}: {what}"))
}

/// One field as a bitset: bit v is set if value v matches.
fn field(raw: &str, f: &Field) -> Result<u64, ApiError> {
    let err = |what: String| cron_error(f.name, &what);
    let value = |text: &str| -> Result<u32, ApiError> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<u32>()
                .ok()
                .filter(|v| (f.min..=f.max).contains(v))
                .ok_or_else(|| err(format!("{text} is outside {}-{}", f.min, f.max)));
        }
        if let Some(i) = f.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(f.min + i as u32);
        }
        let names = match f.names.first() {
            Some(first) => format!(" or a name such as {first}"),
            None => String::new(),
        };
        Err(err(format!(
            "{text:?} is not a number from {} to {}{names}",
            f.min, f.max
        )))
    };
    let mut bits = 0u64;
    for item in raw.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let width = f.max - f.min + 1;
        let step_by = match step {
            None => 1,
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| s.bytes().all(|b| b.is_ascii_digit()) && (1..=width).contains(n))
                .ok_or_else(|| err(format!("step {s:?} must be a number from 1 to {width}")))?,
        };
        let (lo, hi) = if range == "*" {
            (f.min, f.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (lo, hi) = (value(a)?, value(b)?);
            if lo > hi {
                return Err(err(format!(
                    "the range {range} runs backwards; write it as two, like 22-23,0-2"
                )));
            }
            (lo, hi)
        } else {
            let v = value(range)?;
            (v, if step.is_some() { f.max } else { v })
        };
        for v in (lo..=hi).step_by(step_by as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// The lowest set bit at or above `from`.
fn next_bit(bits: u64, from: i64) -> Option<i64> {
    let rest = bits.checked_shr(u32::try_from(from).ok()?)?;
    (rest != 0).then(|| from + i64::from(rest.trailing_zeros()))
}

/// Where a wall-clock time falls in real time.
enum Wall {
    Once(i64),
    /// In a fall-back, the earlier instant and the later one.
    Twice(i64, i64),
    /// In a spring-forward gap: the instant the clock jumped, the first one after the gap.
    Skipped(i64),
}

/// The instants whose wall clock reads `wall`: the offsets a day either side are the only ones
/// that can apply, and each is kept if it is really in force at the instant it gives.
fn resolve(offset: &impl Fn(i64) -> i64, wall: i64) -> Wall {
    let before = offset(wall - DAY);
    let after = offset(wall + DAY);
    let holds = |o: i64| {
        let utc = wall - o;
        (offset(utc) == o).then_some(utc)
    };
    let early = holds(before);
    let late = if after == before { None } else { holds(after) };
    match (early, late) {
        (Some(a), Some(b)) if a != b => Wall::Twice(a.min(b), a.max(b)),
        (Some(a), _) | (None, Some(a)) => Wall::Once(a),
        (None, None) if before < after => {
            // The clock jumped from `wall - after` (still the old offset) to `wall - before`
            // (already the new one); the jump is found by halving, in under 20 steps.
            let (mut lo, mut hi) = (wall - after, wall - before);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == after {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            Wall::Skipped(hi)
        }
        // Two changes within two days: no zone does this; read the clock by the earlier offset.
        (None, None) => Wall::Once(wall - before),
    }
}

/// The first instant strictly after `after_utc` (unix seconds) at which `expr` matches the wall
/// clock of `zone`; `None` if there is none within ten years.
///
/// Daylight-saving changes are handled as Debian's cron (and healthchecks' cronsim) does, so the
/// job is expected when the machine's cron runs it:
/// - A time of day (neither minute nor hour starts with `*`, e.g. `30 2 * * *`) fires once that
///   day whatever the clock does. Skipped by spring-forward (02:30 on 29 March 2026 in Berlin), it
///   fires at the first instant after the gap (03:00 CEST); repeated by fall-back (02:30 on
///   25 October 2026), only at the first of the two.
/// - An expression that runs as time passes (`*/15 * * * *`, `0 * * * *`) follows real time:
///   wall times that are skipped do not fire, and the repeated hour fires again.
pub fn next_after(expr: &CronExpr, zone: &dyn Zone, after_utc: i64) -> Option<i64> {
    if !(-MAX_INSTANT..=MAX_INSTANT).contains(&after_utc) {
        return None;
    }
    let offset = |utc: i64| zone.offset_at(utc).clamp(-DAY, DAY);
    let now = offset(after_utc);
    let wall_now = after_utc + now;
    // A fall-back within the day repeats wall times already passed; for an expression that follows
    // real time they are due again, so the search starts that much earlier.
    let back = if expr.time_of_day {
        0
    } else {
        (now - offset(after_utc + DAY)).max(0)
    };
    let limit = wall_now + SEARCH_DAYS * DAY;
    let mut from = wall_now - back;
    // The earliest second pass of a repeated wall time after `after_utc`: first passes come in
    // order of wall time, second passes after them, so the answer is the smaller of the two.
    let mut repeat: Option<i64> = None;
    loop {
        let Some(wall) = expr.next_wall(from, limit) else {
            return repeat;
        };
        let first = match resolve(&offset, wall) {
            Wall::Once(utc) => Some(utc),
            Wall::Twice(early, late) => {
                if !expr.time_of_day && late > after_utc {
                    repeat = Some(repeat.map_or(late, |r| r.min(late)));
                }
                Some(early)
            }
            Wall::Skipped(jump) => expr.time_of_day.then_some(jump),
        };
        if let Some(utc) = first.filter(|utc| *utc > after_utc) {
            return Some(repeat.map_or(utc, |r| r.min(utc)));
        }
        from = wall + MINUTE;
    }
}

/// 0 is Sunday; day 0 (1 January 1970) was a Thursday.
fn weekday(day: i64) -> i64 {
    (day + 4).rem_euclid(7)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Europe/Berlin by the EU rule: CET (+1 h), and CEST (+2 h) from 01:00 UTC on the last Sunday
    /// of March to 01:00 UTC on the last Sunday of October.
    struct Berlin;

    impl Zone for Berlin {
        fn offset_at(&self, utc: i64) -> i64 {
            let (year, _, _) = civil_from_days(utc.div_euclid(DAY));
            let last_sunday = |month: u32| {
                let last = days_from_civil(year, month, 31);
                last - weekday(last)
            };
            let summer = last_sunday(3) * DAY + HOUR..last_sunday(10) * DAY + HOUR;
            if summer.contains(&utc) {
                2 * HOUR
            } else {
                HOUR
            }
        }
    }

    /// Counts the calls, to show that a search does not walk minute by minute.
    struct Counting<'a>(&'a dyn Zone, Cell<u32>);

    impl Zone for Counting<'_> {
        fn offset_at(&self, utc: i64) -> i64 {
            self.1.set(self.1.get() + 1);
            self.0.offset_at(utc)
        }
    }

    const UTC: FixedOffset = FixedOffset(0);

    /// Unix seconds of a UTC date and time.
    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * DAY + h * HOUR + mi * MINUTE
    }

    fn cron(text: &str) -> CronExpr {
        CronExpr::parse(text).unwrap()
    }

    fn next(text: &str, zone: &dyn Zone, after: i64) -> Option<i64> {
        next_after(&cron(text), zone, after)
    }

    /// The first `n` instants after `after`.
    fn series(text: &str, zone: &dyn Zone, after: i64, n: usize) -> Vec<i64> {
        let expr = cron(text);
        let mut out = vec![];
        let mut t = after;
        for _ in 0..n {
            t = next_after(&expr, zone, t).unwrap();
            out.push(t);
        }
        out
    }

    fn settings(body: &str, current: Option<&Schedule>) -> Result<JobSettings, ApiError> {
        JobSettings::parse(body.as_bytes(), current)
    }

    #[test]
    fn the_calendar_round_trips_and_knows_the_weekday() {
        for day in [-800_000, -1, 0, 59, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(at(2026, 3, 29, 0, 0) / DAY), (2026, 3, 29));
        assert_eq!(weekday(at(2026, 3, 29, 0, 0) / DAY), 0, "a Sunday");
    }

    #[test]
    fn the_test_zone_for_berlin_changes_on_the_last_sundays_of_march_and_october() {
        assert_eq!(Berlin.offset_at(at(2026, 3, 29, 0, 59)), HOUR);
        assert_eq!(Berlin.offset_at(at(2026, 3, 29, 1, 0)), 2 * HOUR);
        assert_eq!(Berlin.offset_at(at(2026, 10, 25, 0, 59)), 2 * HOUR);
        assert_eq!(Berlin.offset_at(at(2026, 10, 25, 1, 0)), HOUR);
    }

    #[test]
    fn three_in_the_morning_in_berlin_is_two_utc_in_winter_and_one_in_summer() {
        assert_eq!(
            next("0 3 * * *", &Berlin, at(2026, 1, 15, 12, 0)),
            Some(at(2026, 1, 16, 2, 0))
        );
        assert_eq!(
            next("0 3 * * *", &Berlin, at(2026, 7, 15, 12, 0)),
            Some(at(2026, 7, 16, 1, 0))
        );
    }

    #[test]
    fn three_in_the_morning_moves_by_an_hour_across_both_changes_of_2026() {
        assert_eq!(
            series("0 3 * * *", &Berlin, at(2026, 3, 27, 12, 0), 3),
            [
                at(2026, 3, 28, 2, 0),
                at(2026, 3, 29, 1, 0),
                at(2026, 3, 30, 1, 0)
            ]
        );
        assert_eq!(
            series("0 3 * * *", &Berlin, at(2026, 10, 23, 12, 0), 3),
            [
                at(2026, 10, 24, 1, 0),
                at(2026, 10, 25, 2, 0),
                at(2026, 10, 26, 2, 0)
            ]
        );
    }

    #[test]
    fn half_past_two_skipped_by_spring_forward_fires_once_when_the_clock_lands_on_three() {
        assert_eq!(
            series("30 2 * * *", &Berlin, at(2026, 3, 27, 12, 0), 3),
            [
                at(2026, 3, 28, 1, 30),
                at(2026, 3, 29, 1, 0), // 03:00 CEST, the first instant after the gap
                at(2026, 3, 30, 0, 30)
            ]
        );
        // Every skipped time of the hour lands on the same instant, which fires once.
        assert_eq!(
            series("0,15,30,45 2 * * *", &Berlin, at(2026, 3, 29, 0, 0), 2),
            [at(2026, 3, 29, 1, 0), at(2026, 3, 30, 0, 0)]
        );
    }

    #[test]
    fn half_past_two_repeated_by_fall_back_fires_only_the_first_time() {
        assert_eq!(
            series("30 2 * * *", &Berlin, at(2026, 10, 24, 12, 0), 2),
            [at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)]
        );
        // Asked during the repeated hour, after the first 02:30 has passed: tomorrow.
        assert_eq!(
            next("30 2 * * *", &Berlin, at(2026, 10, 25, 1, 10)),
            Some(at(2026, 10, 26, 1, 30))
        );
    }

    #[test]
    fn an_expression_that_follows_time_passing_runs_through_the_repeated_hour_again() {
        assert_eq!(
            series("*/30 * * * *", &Berlin, at(2026, 10, 24, 23, 50), 6),
            [
                at(2026, 10, 25, 0, 0),
                at(2026, 10, 25, 0, 30),
                at(2026, 10, 25, 1, 0), // 02:00 CET, the second time
                at(2026, 10, 25, 1, 30),
                at(2026, 10, 25, 2, 0),
                at(2026, 10, 25, 2, 30),
            ]
        );
        // From late in the first pass, the next is early in the second.
        assert_eq!(
            next("*/15 * * * *", &Berlin, at(2026, 10, 25, 0, 50)),
            Some(at(2026, 10, 25, 1, 0))
        );
    }

    #[test]
    fn an_expression_that_follows_time_passing_skips_the_wall_times_that_do_not_exist() {
        assert_eq!(
            series("*/30 * * * *", &Berlin, at(2026, 3, 28, 23, 50), 4),
            [
                at(2026, 3, 29, 0, 0),
                at(2026, 3, 29, 0, 30),
                at(2026, 3, 29, 1, 0),
                at(2026, 3, 29, 1, 30)
            ]
        );
        // 02:30 does not exist: an hourly job next runs at 03:30 CEST.
        assert_eq!(
            next("30 * * * *", &Berlin, at(2026, 3, 29, 0, 30)),
            Some(at(2026, 3, 29, 1, 30))
        );
    }

    /// The reference `next_after` is checked against: walk real time a minute at a time. A time
    /// of day fires when the clock first reaches or jumps over a matching wall time, so never
    /// twice; anything else fires whenever the clock shows a match.
    fn walk(expr: &CronExpr, zone: &dyn Zone, after: i64) -> i64 {
        let wall = |utc: i64| utc + zone.offset_at(utc);
        let matches = |w: i64| expr.next_wall(w, w) == Some(w);
        let mut u = after.div_euclid(MINUTE) * MINUTE;
        let mut high = (u - 3 * HOUR..=u)
            .step_by(MINUTE as usize)
            .map(wall)
            .max()
            .unwrap();
        loop {
            u += MINUTE;
            let w = wall(u);
            let fires = if expr.time_of_day {
                let jumped = (high + MINUTE..=w).step_by(MINUTE as usize).any(matches);
                high = high.max(w);
                jumped
            } else {
                matches(w)
            };
            if fires {
                return u;
            }
        }
    }

    #[test]
    fn the_search_agrees_with_a_minute_by_minute_walk_across_both_changes() {
        let exprs = [
            "30 2 * * *",
            "0 3 * * *",
            "59 1 * * *",
            "0,15,30,45 2 * * *",
            "*/20 2 * * *",
            "0 2-3 * * *",
            "*/15 * * * *",
            "30 * * * *",
            "0 */2 * * *",
        ];
        for text in exprs {
            let expr = cron(text);
            for start in [at(2026, 3, 28, 12, 0), at(2026, 10, 24, 12, 0)] {
                for after in (start..start + 2 * DAY).step_by(17 * MINUTE as usize + 13) {
                    assert_eq!(
                        next_after(&expr, &Berlin, after),
                        Some(walk(&expr, &Berlin, after)),
                        "{text} after {after}"
                    );
                }
            }
        }
    }

    #[test]
    fn fixed_offsets_and_utc_read_the_clock_directly() {
        let new_york_winter = FixedOffset(-5 * HOUR);
        assert_eq!(
            next("0 3 * * *", &new_york_winter, at(2026, 1, 1, 0, 0)),
            Some(at(2026, 1, 1, 8, 0))
        );
        let india = FixedOffset(5 * HOUR + 30 * MINUTE);
        assert_eq!(
            next("0 9 * * *", &india, at(2026, 1, 1, 0, 0)),
            Some(at(2026, 1, 1, 3, 30))
        );
        assert_eq!(
            next("0 3 * * *", &UTC, at(2026, 1, 1, 3, 0)),
            Some(at(2026, 1, 2, 3, 0)),
            "strictly after"
        );
    }

    #[test]
    fn steps_lists_and_ranges_pick_the_right_minutes_and_hours() {
        assert_eq!(
            series("*/15 * * * *", &UTC, at(2026, 1, 1, 0, 7), 3),
            [
                at(2026, 1, 1, 0, 15),
                at(2026, 1, 1, 0, 30),
                at(2026, 1, 1, 0, 45)
            ]
        );
        assert_eq!(
            series("5,50 9-10 * * *", &UTC, at(2026, 1, 1, 0, 0), 5),
            [
                at(2026, 1, 1, 9, 5),
                at(2026, 1, 1, 9, 50),
                at(2026, 1, 1, 10, 5),
                at(2026, 1, 1, 10, 50),
                at(2026, 1, 2, 9, 5)
            ]
        );
        assert_eq!(
            series("0 8-18/5 * * *", &UTC, at(2026, 1, 1, 0, 0), 4),
            [
                at(2026, 1, 1, 8, 0),
                at(2026, 1, 1, 13, 0),
                at(2026, 1, 1, 18, 0),
                at(2026, 1, 2, 8, 0)
            ]
        );
        assert_eq!(
            next("40/10 * * * *", &UTC, at(2026, 1, 1, 0, 55)),
            Some(at(2026, 1, 1, 1, 40)),
            "a/n runs from a to the end of the field"
        );
    }

    #[test]
    fn names_of_months_and_weekdays_in_any_case_and_seven_as_sunday() {
        // 1 January 2026 was a Thursday.
        let weekdays_in_spring = next("0 9 * mar-MAY Mon-Fri", &UTC, at(2026, 1, 1, 0, 0));
        assert_eq!(weekdays_in_spring, Some(at(2026, 3, 2, 9, 0)));
        let sunday = Some(at(2026, 1, 4, 0, 0));
        for text in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * 6-7"] {
            let first = next(text, &UTC, at(2026, 1, 3, 12, 0));
            assert_eq!(first, sunday, "{text}");
        }
        assert_eq!(
            cron("@daily"),
            CronExpr {
                text: "@daily".into(),
                ..cron("0 0 * * *")
            }
        );
    }

    #[test]
    fn when_both_day_fields_are_restricted_either_one_matches() {
        // The 13th, or any Friday: Friday 2 January 2026 comes first, then the 9th, then the 13th.
        assert_eq!(
            series("0 0 13 * 5", &UTC, at(2026, 1, 1, 0, 0), 3),
            [
                at(2026, 1, 2, 0, 0),
                at(2026, 1, 9, 0, 0),
                at(2026, 1, 13, 0, 0)
            ]
        );
        // A field starting with `*` counts as unrestricted: odd days that are also Fridays.
        assert_eq!(
            series("0 0 */2 * 5", &UTC, at(2026, 1, 1, 0, 0), 2),
            [at(2026, 1, 9, 0, 0), at(2026, 1, 23, 0, 0)]
        );
    }

    #[test]
    fn the_twenty_ninth_of_february_waits_for_the_next_leap_year() {
        assert_eq!(
            next("0 0 29 2 *", &UTC, at(2026, 3, 1, 0, 0)),
            Some(at(2028, 2, 29, 0, 0))
        );
        // 2100 is no leap year: eight years from 2096 to 2104.
        assert_eq!(
            next("0 0 29 2 *", &UTC, at(2096, 3, 1, 0, 0)),
            Some(at(2104, 2, 29, 0, 0))
        );
    }

    #[test]
    fn the_thirty_first_of_february_is_refused_and_would_never_be_due() {
        let e = CronExpr::parse("0 0 31 2 *").unwrap_err();
        assert!(e.message.contains("day-of-month"), "{}", e.message);
        let never = CronExpr::fields("0 0 31 2 *").unwrap();
        assert_eq!(next_after(&never, &Berlin, at(2026, 1, 1, 0, 0)), None);
        // With a restricted weekday the day fields are ORed, so it does run.
        assert!(CronExpr::parse("0 0 31 2 mon").is_ok());
    }

    #[test]
    fn a_search_skips_months_and_days_instead_of_walking_minutes() {
        let zone = Counting(&Berlin, Cell::new(0));
        let first = next_after(&cron("0 0 1 1 *"), &zone, at(2026, 2, 1, 0, 0));
        assert_eq!(first, Some(at(2026, 12, 31, 23, 0)));
        assert!(zone.1.get() <= 6, "{} offset lookups", zone.1.get());
    }

    #[test]
    fn a_bad_expression_is_refused_naming_its_field() {
        for (text, field) in [
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day-of-month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day-of-week"),
            ("* * * foo *", "month"),
            ("*/0 * * * *", "minute"),
            ("* 5-2 * * *", "hour"),
            ("1,,2 * * * *", "minute"),
            ("* * * * MON-", "day-of-week"),
        ] {
            let e = CronExpr::parse(text).unwrap_err();
            assert_eq!(e.code, Code::InvalidBody, "{text}");
            assert!(e.message.contains(field), "{text}: {}", e.message);
        }
        for text in ["* * * *", "0 0 * * * 2026", "", "@reboot"] {
            assert!(CronExpr::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_period_is_due_one_period_after_the_last_ping_or_the_creation() {
        let s = Schedule::default();
        assert_eq!(s.next_due(&UTC, None, 1_000), Some(1_000 + DAY));
        assert_eq!(s.next_due(&UTC, Some(5_000), 1_000), Some(5_000 + DAY));
    }

    #[test]
    fn a_cron_schedule_is_due_at_its_first_instant_after_the_last_ping() {
        let s = Schedule::Cron {
            expr: cron("0 3 * * *"),
            tz: "Europe/Berlin".into(),
            grace: HOUR,
        };
        let ping = at(2026, 3, 28, 2, 5);
        assert_eq!(
            s.next_due(&Berlin, Some(ping), 0),
            Some(at(2026, 3, 29, 1, 0))
        );
        assert_eq!(s.tz(), Some("Europe/Berlin"));
    }

    #[test]
    fn a_period_and_a_grace_are_read_from_strings_or_seconds() {
        let s = settings(r#"{"period":"1h","grace":"10m"}"#, None).unwrap();
        assert_eq!(
            s.schedule,
            Some(Schedule::Period {
                period: HOUR,
                grace: 600
            })
        );
        let s = settings(r#"{"period":7200,"grace":"2h","paused":true}"#, None).unwrap();
        assert_eq!(s.schedule.as_ref().map(Schedule::grace), Some(2 * HOUR));
        assert_eq!(s.paused, Some(true));
    }

    #[test]
    fn a_cron_schedule_takes_its_zone_or_utc() {
        let s = settings(
            r#"{"cron":"0 3 * * *","tz":"Europe/Berlin","grace":"30m"}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            s.schedule.unwrap().to_json(),
            serde_json::json!({"cron":"0 3 * * *","tz":"Europe/Berlin","grace":1800})
        );
        let s = settings(r#"{"cron":"@hourly"}"#, None).unwrap().schedule;
        assert_eq!(s.as_ref().and_then(Schedule::tz), Some("UTC"));
        assert_eq!(s.map(|s| s.grace()), Some(DEFAULT_GRACE));
    }

    #[test]
    fn channels_absent_keep_the_list_null_resets_it_and_a_list_replaces_it() {
        assert_eq!(settings(r#"{"grace":"5m"}"#, None).unwrap().channels, None);
        assert_eq!(
            settings(r#"{"channels":null}"#, None).unwrap().channels,
            Some(None)
        );
        assert_eq!(
            settings(r#"{"channels":["abc"]}"#, None).unwrap().channels,
            Some(Some(vec!["abc".to_string()]))
        );
        let e = settings(r#"{"channels":"abc"}"#, None).unwrap_err();
        assert!(e.message.contains("channels"), "{}", e.message);
    }

    #[test]
    fn an_empty_body_changes_nothing_and_a_new_job_gets_the_default() {
        for body in ["", "  ", "{}"] {
            let s = settings(body, None).unwrap();
            assert_eq!(
                s,
                JobSettings {
                    schedule: None,
                    paused: None,
                    channels: None,
                }
            );
        }
        assert_eq!(
            Schedule::default().to_json(),
            serde_json::json!({"period":86400,"grace":3600})
        );
    }

    #[test]
    fn what_the_body_leaves_out_stays_as_it_was() {
        let berlin = settings(r#"{"cron":"0 3 * * *","tz":"Europe/Berlin"}"#, None)
            .unwrap()
            .schedule
            .unwrap();
        let grace_only = settings(r#"{"grace":"5m"}"#, Some(&berlin))
            .unwrap()
            .schedule
            .unwrap();
        assert_eq!(grace_only.tz(), Some("Europe/Berlin"));
        assert_eq!(grace_only.grace(), 300);
        let new_cron = settings(r#"{"cron":"0 4 * * *"}"#, Some(&grace_only))
            .unwrap()
            .schedule
            .unwrap();
        assert_eq!(new_cron.tz(), Some("Europe/Berlin"));
        assert_eq!(new_cron.grace(), 300);
        let new_zone = settings(r#"{"tz":"America/New_York"}"#, Some(&new_cron))
            .unwrap()
            .schedule
            .unwrap();
        assert_eq!(new_zone.to_json()["cron"], "0 4 * * *");
        assert_eq!(new_zone.tz(), Some("America/New_York"));
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let e = settings(r#"{"perod":"1h"}"#, None).unwrap_err();
        assert_eq!(e.code, Code::UnknownField);
        assert!(e.message.contains("perod"));
    }

    #[test]
    fn period_and_cron_together_are_refused() {
        let e = settings(r#"{"period":"1h","cron":"0 3 * * *"}"#, None).unwrap_err();
        assert!(e.message.contains("not both"));
    }

    #[test]
    fn a_zone_without_cron_is_refused_for_a_period_job() {
        assert!(settings(r#"{"period":"1h","tz":"UTC"}"#, None).is_err());
        assert!(settings(r#"{"tz":"UTC"}"#, Some(&Schedule::default())).is_err());
    }

    #[test]
    fn durations_outside_their_bounds_are_refused() {
        for body in [
            r#"{"period":"59s"}"#,
            r#"{"period":"366d"}"#,
            r#"{"grace":"30s"}"#,
            r#"{"grace":"31d"}"#,
            r#"{"grace":0}"#,
            r#"{"grace":"soon"}"#,
            r#"{"period":1.5}"#,
            r#"{"period":true}"#,
        ] {
            let e = settings(body, None).unwrap_err();
            assert_eq!(e.code, Code::InvalidBody, "{body}");
        }
        let e = settings(r#"{"grace":"30s"}"#, None).unwrap_err();
        assert!(
            e.message.contains("from 1 minute to 30 days"),
            "{}",
            e.message
        );
        assert!(settings(r#"{"period":"365d","grace":"30d"}"#, None).is_ok());
        assert!(settings(r#"{"period":60,"grace":60}"#, None).is_ok());
    }

    #[test]
    fn a_zone_must_look_like_an_iana_name() {
        for tz in [
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
            "UTC",
        ] {
            let body = format!(r#"{{"cron":"0 3 * * *","tz":"{tz}"}}"#);
            assert!(settings(&body, None).is_ok(), "{tz}");
        }
        for tz in ["", "../etc/passwd", "Europe/Berlin ", "/UTC", "Ünïcode"] {
            let body = serde_json::json!({"cron":"0 3 * * *","tz":tz}).to_string();
            assert!(settings(&body, None).is_err(), "{tz}");
        }
    }

    #[test]
    fn paused_must_be_a_boolean_and_the_body_an_object() {
        assert!(settings(r#"{"paused":"yes"}"#, None).is_err());
        assert_eq!(settings("[]", None).unwrap_err().code, Code::InvalidBody);
        assert_eq!(settings("{", None).unwrap_err().code, Code::InvalidJson);
    }
}
