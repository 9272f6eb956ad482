//! Timestamps of points: unix seconds, checked against the clock the caller passes in.

use crate::domain::config::FUTURE_TOLERANCE_SECONDS;
use crate::domain::error::{ApiError, Code};

pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// Seconds since 1970 past which a timestamp is surely milliseconds (this is the year 5138).
const MILLISECONDS_THRESHOLD: f64 = 1e11;

/// A point's time in unix seconds (fractions kept: they order points within a bucket).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Timestamp(f64);

impl Timestamp {
    pub fn from_secs(secs: f64) -> Self {
        Timestamp(secs)
    }

    /// Accepts a point's `ts` if it lies between `now - retention` and five minutes from now.
    pub fn parse(secs: f64, now: f64, retention_seconds: i64) -> Result<Self, ApiError> {
        if !secs.is_finite() || secs < 0.0 {
            return Err(ApiError::new(
                Code::InvalidTimestamp,
                "ts must be unix seconds, a non-negative number",
            ));
        }
        if secs >= MILLISECONDS_THRESHOLD {
            return Err(ApiError::new(Code::TimestampInMilliseconds,
                format!(
                    "ts {secs} looks like milliseconds; send unix seconds (divide by 1000, e.g. $(date +%s))"
                ),
            ));
        }
        if secs > now + FUTURE_TOLERANCE_SECONDS {
            return Err(ApiError::new(Code::TimestampInFuture,
                format!(
                    "ts is {:.0} s in the future; at most {FUTURE_TOLERANCE_SECONDS:.0} s ahead is accepted",
                    secs - now
                ),
            ));
        }
        if secs < now - retention_seconds as f64 {
            return Err(ApiError::new(
                Code::TimestampTooOld,
                format!(
                    "ts is older than the retention of {} hours, so it would be deleted at once",
                    retention_seconds / 3600
                ),
            ));
        }
        Ok(Timestamp(secs))
    }

    pub fn secs(self) -> f64 {
        self.0
    }
}

/// Reads a time given in a query: unix seconds, or a duration back from now such as `24h`, `-7d`,
/// `90m`, `30s`, `2w`. Clamped to [0, 1e11) so range arithmetic cannot overflow.
pub fn parse_query_time(raw: &str, now: f64) -> Option<f64> {
    let raw = raw.trim();
    let t = match raw.parse::<f64>() {
        Ok(n) => n.is_finite().then_some(n)?,
        Err(_) => now - parse_duration(raw.trim_start_matches('-'))? as f64,
    };
    Some(t.clamp(0.0, MILLISECONDS_THRESHOLD))
}

/// A duration such as `3600`, `90m`, `24h`, `7d`, `2w` in seconds.
pub fn parse_duration(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<i64>() {
        return (n > 0).then_some(n);
    }
    let unit = raw.chars().last()?;
    let n: i64 = raw.strip_suffix(unit)?.parse().ok().filter(|n| *n > 0)?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A duration field of a request body, given as a string (`"90m"`, `"1h"`, `"2w"`, `"3600"`) or a number of seconds, within
/// [min, max]; `note` ends the message of a value outside them.
pub fn duration_value(
    v: &serde_json::Value,
    field: &str,
    min: i64,
    max: i64,
    note: &str,
) -> Result<i64, ApiError> {
    let secs = match v {
        serde_json::Value::String(s) => parse_duration(s),
        serde_json::Value::Number(n) => n.as_i64().filter(|n| *n > 0),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::new(
            Code::InvalidBody,
            format!(r#"{field} must be a duration such as "90m", "1h", "1d", "2w" or a number of seconds"#),
        )
    })?;
    if !(min..=max).contains(&secs) {
        return Err(ApiError::new(
            Code::InvalidBody,
            format!(
                "{field} must be from {} to {}{note}",
                human(min),
                human(max)
            ),
        ));
    }
    Ok(secs)
}

pub fn human(secs: i64) -> String {
    let (n, unit) = match secs {
        s if s % DAY == 0 => (s / DAY, "day"),
        s if s % HOUR == 0 => (s / HOUR, "hour"),
        s if s % MINUTE == 0 => (s / MINUTE, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's algorithm): dates for chart captions, cron schedules and notifications without a
/// date library.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) to days since 1970-01-01, the inverse of `civil_from_days`.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_700_000_000.0;
    const WEEK: i64 = 7 * 86_400;

    #[test]
    fn a_timestamp_a_minute_ago_is_accepted_with_its_fraction() {
        let ts = Timestamp::parse(NOW - 60.5, NOW, WEEK).unwrap();
        assert_eq!(ts.secs(), NOW - 60.5);
    }

    #[test]
    fn milliseconds_are_recognised_and_named_in_the_error() {
        let e = Timestamp::parse(NOW * 1000.0, NOW, WEEK).unwrap_err();
        assert_eq!(e.code, "timestamp_in_milliseconds");
        assert!(e.message.contains("milliseconds"));
    }

    #[test]
    fn four_minutes_ahead_is_accepted_but_six_is_not() {
        assert!(Timestamp::parse(NOW + 240.0, NOW, WEEK).is_ok());
        let e = Timestamp::parse(NOW + 360.0, NOW, WEEK).unwrap_err();
        assert_eq!(e.code, "timestamp_in_future");
    }

    #[test]
    fn a_point_older_than_retention_is_rejected() {
        let e = Timestamp::parse(NOW - WEEK as f64 - 1.0, NOW, WEEK).unwrap_err();
        assert_eq!(e.code, "timestamp_too_old");
        assert!(Timestamp::parse(NOW - WEEK as f64 + 1.0, NOW, WEEK).is_ok());
    }

    #[test]
    fn negative_timestamps_are_invalid() {
        assert_eq!(
            Timestamp::parse(-1.0, NOW, WEEK).unwrap_err().code,
            "invalid_timestamp"
        );
    }

    #[test]
    fn query_times_read_seconds_and_durations_back_from_now() {
        assert_eq!(parse_query_time("1699990000", NOW), Some(1_699_990_000.0));
        assert_eq!(parse_query_time("24h", NOW), Some(NOW - 86_400.0));
        assert_eq!(parse_query_time("-7d", NOW), Some(NOW - WEEK as f64));
        assert_eq!(parse_query_time("soon", NOW), None);
    }

    #[test]
    fn a_multibyte_unit_or_an_absurd_time_is_an_error_or_clamped_never_a_panic() {
        assert_eq!(parse_duration("1é"), None);
        assert_eq!(parse_duration("é"), None);
        assert_eq!(parse_query_time("1é", NOW), None);
        assert_eq!(parse_query_time("-1e300", NOW), Some(0.0));
        assert_eq!(parse_query_time("1e300", NOW), Some(MILLISECONDS_THRESHOLD));
        assert_eq!(parse_query_time("999999999999w", NOW), Some(0.0));
    }

    #[test]
    fn civil_dates_round_trip_across_leap_days_and_centuries() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for (y, m, d) in [(2000, 2, 29), (2100, 3, 1), (2026, 10, 25), (1600, 12, 31)] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
        assert_eq!(days_from_civil(2026, 11, 23), 20_780);
    }

    #[test]
    fn durations_have_units_and_must_be_positive() {
        assert_eq!(parse_duration("3600"), Some(3600));
        assert_eq!(parse_duration("1h"), Some(3600));
        assert_eq!(parse_duration("2w"), Some(1_209_600));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("5y"), None);
        assert_eq!(parse_duration(""), None);
    }
}
