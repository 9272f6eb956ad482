//! Alert rules on charts: what `POST /api/v1/alerts` asks for, judging a rule from the buckets of
//! its series, and when a rule needs its next look.

use crate::domain::bucket::{Agg, Bucket};
use crate::domain::error::{strict_body_error, ApiError, Code};
use crate::domain::names::{ChartName, Labels};
use crate::domain::notify::parse_channel_list;
use crate::domain::time::{duration_value, human, DAY, HOUR, MINUTE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MAX_ALERT_NAME_LEN: usize = 100;
/// A window reads every bucket in it at each look: a week of minute buckets is 10,080 rows.
pub const MAX_WINDOW: i64 = 7 * DAY;
pub const MAX_ABSENT: i64 = 30 * DAY;
/// However a rule's data stands, it is looked at again within this: a missed look after an ingest
/// (the runtime may drop work left after a response) is caught up this late at worst.
pub const RECHECK_AT_MOST: i64 = HOUR;
/// Transitions kept with each rule, newest last.
pub const HISTORY_KEPT: usize = 20;
const NOTE: &str = "; rules are checked once a minute";

/// How a threshold compares the value with its `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    pub fn parse(raw: &str) -> Option<Op> {
        Some(match raw {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// When a rule fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// `agg` of the points in the last `window` seconds `op` `value`.
    Threshold {
        agg: Agg,
        window: i64,
        op: Op,
        value: f64,
    },
    /// No point for `after` seconds (counted from the rule's creation if there never was one).
    Absent { after: i64 },
}

impl Condition {
    /// The condition in words: `last over 15m < 10`, `no point for 2h`.
    pub fn describe(&self) -> String {
        match self {
            Condition::Threshold {
                agg,
                window,
                op,
                value,
            } => format!(
                "{} over {} {} {value}",
                agg.as_str(),
                short(*window),
                op.as_str()
            ),
            Condition::Absent { after } => format!("no point for {}", short(*after)),
        }
    }
}

/// `90s`, `15m`, `2h`, `1d`: the shortest exact spelling, as a rule is shown and stored.
pub fn short(secs: i64) -> String {
    match secs {
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % HOUR == 0 => format!("{}h", s / HOUR),
        s if s % MINUTE == 0 => format!("{}m", s / MINUTE),
        s => format!("{s}s"),
    }
}

/// What `POST /api/v1/alerts` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRequest {
    pub name: String,
    pub chart: ChartName,
    /// `None`: the chart's series without labels, or its only series.
    pub labels: Option<Labels>,
    pub condition: Condition,
    /// `None`: every channel.
    pub channels: Option<Vec<String>>,
}

impl AlertRequest {
    pub fn parse(body: &[u8]) -> Result<AlertRequest, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            chart: Option<String>,
            labels: Option<Value>,
            agg: Option<String>,
            window: Option<Value>,
            op: Option<String>,
            value: Option<Value>,
            absent: Option<Value>,
            name: Option<String>,
            channels: Option<Value>,
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            strict_body_error(
                &e,
                |field| format!("unknown field {field:?}; a rule has chart, labels, agg, window, op, value (or absent), name and channels"),
                Some(r#"send a JSON object such as {"chart":"disk.free","agg":"last","window":"15m","op":"<","value":10} or {"chart":"orders","absent":"2h"}"#),
            )
        })?;
        let chart = raw.chart.ok_or_else(|| {
            ApiError::new(Code::MissingField, "chart is missing: the chart to watch")
        })?;
        let chart = ChartName::parse(&chart)?;
        let labels = match raw.labels {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(Labels::from_query(&v.to_string())?),
            Some(_) => {
                return Err(ApiError::new(
                    Code::InvalidLabels,
                    r#"labels must be an object such as {"host":"a"}"#,
                ))
            }
        };
        let condition = match raw.absent {
            Some(absent) => {
                if raw.agg.is_some()
                    || raw.window.is_some()
                    || raw.op.is_some()
                    || raw.value.is_some()
                {
                    return Err(ApiError::new(
                        Code::InvalidBody,
                        "a rule is either absent or agg, window, op and value, not both",
                    ));
                }
                Condition::Absent {
                    after: duration_value(&absent, "absent", MINUTE, MAX_ABSENT, NOTE)?,
                }
            }
            None => threshold(raw.agg, raw.window, raw.op, raw.value)?,
        };
        let name = raw.name.unwrap_or_default();
        let name = name.trim();
        if name.chars().count() > MAX_ALERT_NAME_LEN || name.chars().any(char::is_control) {
            return Err(ApiError::new(
                Code::InvalidName,
                format!("name must be one line of at most {MAX_ALERT_NAME_LEN} characters"),
            ));
        }
        let name = if name.is_empty() {
            format!("{} {}", chart.as_str(), condition.describe())
        } else {
            name.to_string()
        };
        let channels = match raw.channels {
            None => None,
            Some(v) => parse_channel_list(&v)?,
        };
        Ok(AlertRequest {
            name,
            chart,
            labels,
            condition,
            channels,
        })
    }
}

fn threshold(
    agg: Option<String>,
    window: Option<Value>,
    op: Option<String>,
    value: Option<Value>,
) -> Result<Condition, ApiError> {
    let agg = agg
        .as_deref()
        .map(Agg::parse)
        .transpose()?
        .unwrap_or(Agg::Last);
    let window = match window {
        Some(w) => duration_value(&w, "window", MINUTE, MAX_WINDOW, NOTE)?,
        None => DEFAULT_WINDOW,
    };
    let op = op.ok_or_else(|| {
        ApiError::new(
            Code::MissingField,
            r#"op is missing: one of >, >=, <, <=, ==, != (or give "absent" for a rule on missing points)"#,
        )
    })?;
    let op = Op::parse(&op).ok_or_else(|| {
        ApiError::new(
            Code::InvalidBody,
            format!("op {op:?} is not one of >, >=, <, <=, ==, !="),
        )
    })?;
    let value = value
        .ok_or_else(|| ApiError::new(Code::MissingField, "value is missing: the threshold"))?
        .as_f64()
        .filter(|v| v.is_finite())
        .ok_or_else(|| ApiError::new(Code::InvalidValue, "value must be a finite number"))?;
    Ok(Condition::Threshold {
        agg,
        window,
        op,
        value,
    })
}

/// A rule without `window` looks at the last 15 minutes.
pub const DEFAULT_WINDOW: i64 = 15 * MINUTE;

/// A stored rule's condition as its own JSON columns give it back.
pub fn condition_from_columns(
    agg: Option<&str>,
    window: Option<i64>,
    op: Option<&str>,
    value: Option<f64>,
    absent: Option<i64>,
) -> Option<Condition> {
    match (absent, agg, window, op, value) {
        (Some(after), ..) => Some(Condition::Absent { after }),
        (None, Some(agg), Some(window), Some(op), Some(value)) => Some(Condition::Threshold {
            agg: Agg::parse(agg).ok()?,
            window,
            op: Op::parse(op)?,
            value,
        }),
        _ => None,
    }
}

/// A rule's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Ok,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Ok => "ok",
            AlertState::Firing => "firing",
        }
    }

    pub fn parse(raw: &str) -> AlertState {
        if raw == "firing" {
            AlertState::Firing
        } else {
            AlertState::Ok
        }
    }
}

/// What the store holds of a rule's series at a look.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// The newest bucket of the series, whatever its age.
    pub newest: Option<Bucket>,
    /// For aggregates other than `last`: every bucket overlapping the window, any order.
    pub window: Vec<Bucket>,
    pub bucket_seconds: i64,
}

/// A rule judged at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub state: AlertState,
    /// The value compared (threshold rules), `None` when the window holds no point.
    pub value: Option<f64>,
    /// When the rule must be looked at again if no point arrives: the moment its window loses
    /// a bucket or its absence limit passes, at most RECHECK_AT_MOST ahead, in whole seconds.
    pub check_at: i64,
    /// For the message: what the store showed (`no point since ...`).
    pub detail: String,
}

/// Judges `condition` at `now` from what the store holds, `before` being the stored state. `created_at` stands in for the last
/// point of a series that never had one, so a new absence rule on a new chart waits its full time.
pub fn judge(
    condition: &Condition,
    seen: &Seen,
    before: AlertState,
    created_at: f64,
    now: f64,
) -> Judgement {
    let horizon = now.floor() as i64 + RECHECK_AT_MOST;
    let bs = seen.bucket_seconds.max(1);
    match *condition {
        Condition::Absent { after } => {
            let last = seen.newest.as_ref().map(|b| b.last_ts);
            // A point older than the rule counts: a chart silent for days fires at once.
            let since = last.unwrap_or(created_at);
            // Retention may remove a silent series while its rule fires: that is no recovery.
            let firing =
                now - since >= after as f64 || (last.is_none() && before == AlertState::Firing);
            let due = (since + after as f64).ceil() as i64;
            Judgement {
                state: if firing {
                    AlertState::Firing
                } else {
                    AlertState::Ok
                },
                value: None,
                check_at: if firing { horizon } else { due.min(horizon) },
                detail: match last {
                    Some(t) => format!("last point {} ago", human_ago(now - t)),
                    // Retention may have removed the series since: say only what is sure.
                    None => format!("no point in the last {}", short(after)),
                },
            }
        }
        Condition::Threshold {
            agg,
            window,
            op,
            value: limit,
        } => {
            let start = now - window as f64;
            // No upper bound: a point may be stamped up to the ingest's future tolerance ahead,
            // and the minutely check judges at its scheduled time, which may trail the clock.
            let overlaps = |b: &&Bucket| (b.ts + bs) as f64 > start;
            let (folded, next) = if agg == Agg::Last {
                // Only the newest bucket can give the last value; by time alone it changes only
                // when that bucket leaves the window.
                let b = seen.newest.as_ref().filter(overlaps).cloned();
                let leaves = b.as_ref().map(|b| b.ts + bs + window);
                (b, leaves)
            } else {
                let mut inside = seen.window.iter().filter(overlaps);
                let mut folded = inside.next().cloned();
                for b in inside {
                    if let Some(f) = folded.as_mut() {
                        f.merge(b);
                    }
                }
                // New points move an aggregate too, and an ingest does not judge it (that would
                // read the whole window per ingest): it is looked at again every cadence while
                // its window holds points. An empty window waits for an ingest to wake it.
                let next = folded
                    .as_ref()
                    .map(|_| now.floor() as i64 + cadence(window, bs));
                (folded, next)
            };
            let value = match (&folded, agg) {
                (Some(b), _) => Some(b.value(agg)),
                // An empty window counts nothing and sums to nothing.
                (None, Agg::Count | Agg::Sum) => Some(0.0),
                (None, _) => None,
            };
            let firing = value.is_some_and(|v| op.holds(v, limit));
            Judgement {
                state: if firing {
                    AlertState::Firing
                } else {
                    AlertState::Ok
                },
                value,
                check_at: next.map_or(horizon, |t| t.clamp(now.floor() as i64 + 1, horizon)),
                detail: match value {
                    Some(v) => format!("{} over {} is {v}", agg.as_str(), short(window)),
                    None => format!("no point in the last {}", short(window)),
                },
            }
        }
    }
}

/// How often an aggregate rule whose window holds points is looked at: every bucket, or every
/// 1/60 of its window if that is longer (a day's window every 24 minutes), so that looks reading
/// the window stay few; never less often than RECHECK_AT_MOST. Whole minutes, as the check runs
/// once a minute.
pub fn cadence(window: i64, bucket_seconds: i64) -> i64 {
    let every = bucket_seconds.max(window / 60).max(MINUTE);
    every.div_euclid(MINUTE) * MINUTE
}

/// Refuses a rule the store cannot answer: an aggregate over more time than the series keeps
/// (`kept_seconds`: MAX_POINTS buckets of the chart's size, or the retention if shorter) would
/// silently see only part of its window, and an absence longer than the retention would outlive
/// the points it waits for.
pub fn check_fits(
    condition: &Condition,
    kept_seconds: i64,
    retention_seconds: i64,
) -> Result<(), ApiError> {
    let kept = kept_seconds.min(retention_seconds);
    match *condition {
        Condition::Threshold { agg, window, .. } if agg != Agg::Last && window > kept => {
            Err(ApiError::new(
                Code::InvalidBody,
                format!(
                    "window {} is longer than the {} of points this chart keeps (MAX_POINTS buckets, within RETENTION_HOURS); shorten it, or use agg last",
                    short(window),
                    human(kept)
                ),
            ))
        }
        Condition::Absent { after } if after > retention_seconds => Err(ApiError::new(
            Code::InvalidBody,
            format!(
                "absent {} is longer than the retention ({}): points are gone before it could fire",
                short(after),
                human(retention_seconds)
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether a look at this rule reads the buckets of its window (aggregates other than `last`).
pub fn reads_window(condition: &Condition) -> bool {
    matches!(condition, Condition::Threshold { agg, .. } if *agg != Agg::Last)
}

fn human_ago(secs: f64) -> String {
    human((secs.max(0.0) as i64).max(1))
}

/// One change of state, kept with the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: f64,
    pub from: String,
    pub to: String,
    pub value: Option<f64>,
}

/// The stored history with `t` added, the newest HISTORY_KEPT kept. A history that does not read
/// back starts again rather than block the rule.
pub fn push_history(stored: &str, t: Transition) -> String {
    let mut list: Vec<Transition> = serde_json::from_str(stored).unwrap_or_default();
    list.push(t);
    let drop = list.len().saturating_sub(HISTORY_KEPT);
    list.drain(..drop);
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<AlertRequest, ApiError> {
        AlertRequest::parse(body.as_bytes())
    }

    fn bucket(ts: i64, values: &[f64]) -> Bucket {
        let mut b = Bucket {
            ts,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: 0.0,
            last_ts: ts as f64,
        };
        for (i, v) in values.iter().enumerate() {
            b.count += 1;
            b.sum += v;
            b.min = b.min.min(*v);
            b.max = b.max.max(*v);
            b.last = *v;
            b.last_ts = ts as f64 + i as f64;
        }
        b
    }

    fn seen(buckets: &[Bucket]) -> Seen {
        Seen {
            newest: buckets.iter().max_by_key(|b| b.ts).cloned(),
            window: buckets.to_vec(),
            bucket_seconds: 60,
        }
    }

    #[test]
    fn a_threshold_rule_reads_as_the_issue_writes_it() {
        let r = parse(r#"{"chart":"disk.free","labels":{"host":"a"},"agg":"last","window":"15m","op":"<","value":10,"name":"disk almost full"}"#).unwrap();
        assert_eq!(r.name, "disk almost full");
        assert_eq!(r.chart.as_str(), "disk.free");
        assert_eq!(r.labels.unwrap().canonical(), r#"{"host":"a"}"#);
        assert_eq!(
            r.condition,
            Condition::Threshold {
                agg: Agg::Last,
                window: 900,
                op: Op::Lt,
                value: 10.0
            }
        );
        assert_eq!(r.channels, None);
    }

    #[test]
    fn an_absence_rule_needs_only_a_chart_and_a_duration_and_gets_a_name() {
        let r = parse(r#"{"chart":"orders","absent":"2h"}"#).unwrap();
        assert_eq!(r.condition, Condition::Absent { after: 7200 });
        assert_eq!(r.name, "orders no point for 2h");
        let t = parse(r#"{"chart":"q","op":">","value":1e4}"#).unwrap();
        assert_eq!(t.name, "q last over 15m > 10000");
    }

    #[test]
    fn rules_that_cannot_mean_anything_are_refused_with_a_reason() {
        for (body, code, says) in [
            (r#"{"absent":"2h"}"#, Code::MissingField, "chart"),
            (r#"{"chart":"a","op":"<"}"#, Code::MissingField, "value"),
            (r#"{"chart":"a","value":1}"#, Code::MissingField, "op"),
            (
                r#"{"chart":"a","op":"=<","value":1}"#,
                Code::InvalidBody,
                "not one of",
            ),
            (
                r#"{"chart":"a","op":"<","value":"1"}"#,
                Code::InvalidValue,
                "finite",
            ),
            (
                r#"{"chart":"a","op":"<","value":1,"agg":"median"}"#,
                Code::InvalidAgg,
                "agg",
            ),
            (
                r#"{"chart":"a","op":"<","value":1,"window":"30s"}"#,
                Code::InvalidBody,
                "from 1 minute to 7 days",
            ),
            (
                r#"{"chart":"a","op":"<","value":1,"window":"8d"}"#,
                Code::InvalidBody,
                "7 days",
            ),
            (
                r#"{"chart":"a","absent":"2h","op":"<"}"#,
                Code::InvalidBody,
                "either absent",
            ),
            (
                r#"{"chart":"a","absent":"31d"}"#,
                Code::InvalidBody,
                "30 days",
            ),
            (
                r#"{"chart":"a","absent":"2h","treshold":1}"#,
                Code::UnknownField,
                "treshold",
            ),
            (
                r#"{"chart":"a","absent":"2h","labels":"host:a"}"#,
                Code::InvalidLabels,
                "object",
            ),
            (
                r#"{"chart":"a","absent":"2h","channels":[]}"#,
                Code::InvalidBody,
                "channels",
            ),
            (
                r#"{"chart":"a","absent":"2h","channels":["x y"]}"#,
                Code::InvalidBody,
                "channels",
            ),
            (
                r#"{"chart":"a","absent":"2h","name":"two\nlines"}"#,
                Code::InvalidName,
                "one line",
            ),
            (r#"{"chart":"../a","absent":"2h"}"#, Code::InvalidChart, ""),
            (r#"[1]"#, Code::InvalidBody, "JSON object"),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.code, code, "{body}: {}", e.message);
            assert!(e.message.contains(says), "{body}: {}", e.message);
        }
    }

    #[test]
    fn channels_name_a_list_or_null_for_all() {
        let r = parse(r#"{"chart":"a","absent":"1h","channels":["abc","def","abc"]}"#).unwrap();
        assert_eq!(r.channels, Some(vec!["abc".into(), "def".into()]));
        let r = parse(r#"{"chart":"a","absent":"1h","channels":null}"#).unwrap();
        assert_eq!(r.channels, None);
    }

    #[test]
    fn a_last_rule_fires_on_a_bad_newest_value_and_clears_when_it_leaves_the_window() {
        let rule = parse(r#"{"chart":"d","op":"<","value":10,"window":"15m"}"#)
            .unwrap()
            .condition;
        let s = seen(&[bucket(0, &[50.0]), bucket(600, &[20.0, 7.5])]);
        let j = judge(&rule, &s, AlertState::Ok, 0.0, 630.0);
        assert_eq!(j.state, AlertState::Firing);
        assert_eq!(j.value, Some(7.5));
        // The newest bucket stops overlapping the window 15 minutes after it ends.
        assert_eq!(j.check_at, 600 + 60 + 900);
        let later = judge(&rule, &s, AlertState::Ok, 0.0, 1560.0);
        assert_eq!(later.state, AlertState::Ok);
        assert_eq!(later.value, None);
        assert!(later.detail.contains("no point in the last 15m"));
    }

    #[test]
    fn aggregates_fold_every_bucket_in_the_window() {
        let s = seen(&[
            bucket(0, &[100.0]),
            bucket(600, &[1.0, 3.0]),
            bucket(660, &[5.0]),
        ]);
        let at = |agg: &str, op: &str, v: f64| {
            let c = parse(&format!(
                r#"{{"chart":"c","agg":"{agg}","window":"10m","op":"{op}","value":{v}}}"#
            ))
            .unwrap()
            .condition;
            judge(&c, &s, AlertState::Ok, 0.0, 700.0)
        };
        // The bucket at 0 ended before the window (700 - 600 = 100) began.
        assert_eq!(at("avg", ">", 2.0).value, Some(3.0));
        assert_eq!(at("sum", ">=", 9.0).state, AlertState::Firing);
        assert_eq!(at("min", "==", 1.0).state, AlertState::Firing);
        assert_eq!(at("max", "!=", 5.0).state, AlertState::Ok);
        assert_eq!(at("count", ">", 2.0).value, Some(3.0));
        // While points are in the window, the next look comes a cadence later.
        assert_eq!(at("avg", ">", 2.0).check_at, 700 + 60);
    }

    #[test]
    fn an_empty_window_counts_zero_so_too_few_orders_fires() {
        let c = parse(r#"{"chart":"orders","agg":"count","window":"1h","op":"<","value":1}"#)
            .unwrap()
            .condition;
        let j = judge(&c, &seen(&[]), AlertState::Ok, 0.0, 10_000.0);
        assert_eq!((j.state, j.value), (AlertState::Firing, Some(0.0)));
        // Nothing can change it but a point; the next look is the hourly catch-up.
        assert_eq!(j.check_at, 10_000 + RECHECK_AT_MOST);
        let avg = parse(r#"{"chart":"o","agg":"avg","op":"<","value":1}"#)
            .unwrap()
            .condition;
        assert_eq!(
            judge(&avg, &seen(&[]), AlertState::Ok, 0.0, 10.0).state,
            AlertState::Ok
        );
    }

    #[test]
    fn an_absence_rule_fires_after_its_time_since_the_last_point_or_since_it_was_made() {
        let c = Condition::Absent { after: 7200 };
        let s = seen(&[bucket(1000, &[1.0, 2.0])]);
        let ok = judge(&c, &s, AlertState::Ok, 0.0, 5000.0);
        assert_eq!(ok.state, AlertState::Ok);
        assert_eq!(ok.check_at, 1001 + 7200);
        let firing = judge(&c, &s, AlertState::Ok, 0.0, 8201.0);
        assert_eq!(firing.state, AlertState::Firing);
        assert!(firing.detail.contains("ago"), "{}", firing.detail);
        let never = judge(&c, &seen(&[]), AlertState::Ok, 500.0, 5000.0);
        assert_eq!((never.state, never.check_at), (AlertState::Ok, 7700));
        assert_eq!(
            judge(&c, &seen(&[]), AlertState::Ok, 500.0, 7700.0).state,
            AlertState::Firing
        );
    }

    #[test]
    fn an_aggregate_is_looked_at_every_bucket_or_every_sixtieth_of_its_window() {
        assert_eq!(cadence(900, 60), 60);
        assert_eq!(cadence(86_400, 60), 1440);
        assert_eq!(cadence(900, 3600), 3600);
        assert_eq!(cadence(600, 1), 60);
        let c = parse(r#"{"chart":"c","agg":"avg","window":"1d","op":">","value":1}"#)
            .unwrap()
            .condition;
        assert!(reads_window(&c));
        let j = judge(&c, &seen(&[bucket(0, &[5.0])]), AlertState::Ok, 0.0, 100.0);
        assert_eq!(j.check_at, 100 + 1440);
        let last = parse(r#"{"chart":"c","op":">","value":1}"#)
            .unwrap()
            .condition;
        assert!(!reads_window(&last));
    }

    #[test]
    fn a_point_stamped_ahead_of_the_look_still_counts() {
        let last = parse(r#"{"chart":"d","op":"<","value":10}"#)
            .unwrap()
            .condition;
        let ahead = seen(&[bucket(1200, &[5.0])]);
        assert_eq!(
            judge(&last, &ahead, AlertState::Ok, 0.0, 1050.0).state,
            AlertState::Firing
        );
        let avg = parse(r#"{"chart":"d","agg":"avg","op":"<","value":10}"#)
            .unwrap()
            .condition;
        assert_eq!(
            judge(&avg, &ahead, AlertState::Ok, 0.0, 1050.0).value,
            Some(5.0)
        );
    }

    #[test]
    fn rules_longer_than_what_the_store_keeps_are_refused() {
        let rule = |body: &str| parse(body).unwrap().condition;
        let day_avg = rule(r#"{"chart":"c","agg":"avg","window":"1d","op":">","value":1}"#);
        // 1,000 minute buckets: 16.7 hours.
        let e = check_fits(&day_avg, 60_000, 7 * DAY).unwrap_err();
        assert!(e.message.contains("1000 minutes"), "{}", e.message);
        assert!(check_fits(&day_avg, 86_400, 7 * DAY).is_ok());
        // A last rule reads only the newest bucket.
        let day_last = rule(r#"{"chart":"c","window":"1d","op":">","value":1}"#);
        assert!(check_fits(&day_last, 60, 7 * DAY).is_ok());
        let long_absence = rule(r#"{"chart":"c","absent":"8d"}"#);
        let e = check_fits(&long_absence, 60_000, 7 * DAY).unwrap_err();
        assert!(e.message.contains("retention"), "{}", e.message);
    }

    #[test]
    fn a_firing_absence_rule_stays_firing_when_retention_removes_its_series() {
        let c = Condition::Absent { after: 7200 };
        let j = judge(&c, &seen(&[]), AlertState::Firing, 0.0, 100.0);
        assert_eq!(j.state, AlertState::Firing);
        assert_eq!(
            judge(&c, &seen(&[]), AlertState::Ok, 0.0, 100.0).state,
            AlertState::Ok
        );
    }

    #[test]
    fn the_history_keeps_the_newest_transitions() {
        let mut h = "[]".to_string();
        for i in 0..25 {
            h = push_history(
                &h,
                Transition {
                    at: i as f64,
                    from: "ok".into(),
                    to: "firing".into(),
                    value: Some(1.0),
                },
            );
        }
        let list: Vec<Transition> = serde_json::from_str(&h).unwrap();
        assert_eq!(list.len(), HISTORY_KEPT);
        assert_eq!(list[0].at, 5.0);
        assert_eq!(
            push_history("not json", list[0].clone())
                .matches("at")
                .count(),
            1
        );
    }

    #[test]
    fn conditions_read_back_from_their_columns() {
        for body in [
            r#"{"chart":"a","agg":"max","window":"2h","op":">=","value":3.5}"#,
            r#"{"chart":"a","absent":"90m"}"#,
        ] {
            let c = parse(body).unwrap().condition;
            let back = match c {
                Condition::Threshold {
                    agg,
                    window,
                    op,
                    value,
                } => condition_from_columns(
                    Some(agg.as_str()),
                    Some(window),
                    Some(op.as_str()),
                    Some(value),
                    None,
                ),
                Condition::Absent { after } => {
                    condition_from_columns(None, None, None, None, Some(after))
                }
            };
            assert_eq!(back, Some(c));
        }
        assert_eq!(short(5400), "90m");
        assert_eq!(short(90), "90s");
    }
}
