//! Query planning for `GET /api/v1/charts/{chart}`: parameters parsed into a range, an aggregate and
//! a step, and the rows the answer may read.

use crate::domain::bucket::{rollup, Agg, Bucket};
use crate::domain::config::MAX_QUERY_POINTS;
use crate::domain::error::{ApiError, Code};
use crate::domain::names::Labels;
use crate::domain::time::{parse_duration, parse_query_time};
use serde::Serialize;

/// Default range when `from` is not given: the last 7 days.
pub const DEFAULT_RANGE_SECONDS: f64 = 7.0 * 86_400.0;

#[derive(Debug, Clone, PartialEq)]
pub struct QueryParams {
    pub from: f64,
    pub to: f64,
    pub agg: Agg,
    pub step: Option<i64>,
    /// `None`: the caller did not choose, so the chart's only (or label-less) series is meant.
    pub labels: Option<Labels>,
}

impl QueryParams {
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: f64,
    ) -> Result<Self, ApiError> {
        let mut p = QueryParams {
            from: now - DEFAULT_RANGE_SECONDS,
            to: now + 1.0,
            agg: Agg::Avg,
            step: None,
            labels: None,
        };
        for (k, v) in pairs {
            match k {
                "from" => p.from = time(v, now, "from")?,
                "to" => p.to = time(v, now, "to")?,
                "agg" => p.agg = Agg::parse(v)?,
                "step" => {
                    p.step = Some(parse_duration(v).ok_or_else(|| {
                        ApiError::new(
                            Code::InvalidStep,
                            "step must be seconds or a duration such as 3600, 1h or 1d",
                        )
                    })?)
                }
                "labels" => p.labels = Some(Labels::from_query(v)?),
                _ => {}
            }
        }
        if p.from >= p.to {
            return Err(ApiError::new(Code::InvalidRange, "from must be before to"));
        }
        Ok(p)
    }

    /// The step the answer uses, checked against the series' bucket size. A step longer than the
    /// retention would only ever hold one point, so it is cut to the retention (in whole buckets).
    pub fn step_for(&self, bucket_seconds: u32, retention_seconds: i64) -> Result<i64, ApiError> {
        let bucket = i64::from(bucket_seconds.max(1));
        let longest = (retention_seconds / bucket).max(1) * bucket;
        match self.step {
            None => Ok(bucket),
            Some(s) if s % bucket == 0 => Ok(s.min(longest)),
            Some(s) => Err(ApiError::new(
                Code::InvalidStep,
                format!("step {s} is not a multiple of this chart's bucket size of {bucket} s"),
            )),
        }
    }

    /// The bucket range to read: buckets that start inside [from, to), widened to whole steps.
    pub fn bucket_range(&self, step: i64) -> (i64, i64) {
        let from = (self.from.floor() as i64).div_euclid(step) * step;
        (from, self.to.ceil() as i64)
    }
}

/// `spark=N` on the chart list: how many of each series' newest buckets to send for a sparkline.
pub fn parse_spark(raw: Option<&str>) -> Result<u32, ApiError> {
    match raw {
        None => Ok(0),
        Some(n) => n.parse::<u32>().ok().filter(|n| *n <= 200).ok_or_else(|| {
            ApiError::new(
                Code::InvalidSpark,
                "spark must be a number of buckets from 0 to 200",
            )
        }),
    }
}

/// `since=T` on the chart list: each sparkline then holds only its buckets from `T` on (unix
/// seconds), for a dashboard that merges them into what it already has.
pub fn parse_since(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && (0.0..1e11).contains(t))
        .map(|t| Some(t.floor() as i64))
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidRange,
                "since must be unix seconds (not milliseconds)",
            )
        })
}

fn time(raw: &str, now: f64, name: &str) -> Result<f64, ApiError> {
    parse_query_time(raw, now).ok_or_else(|| {
        ApiError::new(
            Code::InvalidRange,
            format!("{name} must be unix seconds or a duration back from now such as 24h"),
        )
    })
}

#[derive(Debug, Serialize, PartialEq)]
pub struct PointOut {
    pub ts: i64,
    pub value: f64,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
}

/// Turns stored buckets (ascending) into answer points: rolled up to `step`, newest
/// `MAX_QUERY_POINTS` kept. Returns the points and whether older ones were left out.
pub fn answer(
    buckets: &[Bucket],
    agg: Agg,
    step: i64,
    bucket_seconds: u32,
) -> (Vec<PointOut>, bool) {
    let rolled;
    let rows: &[Bucket] = if step > i64::from(bucket_seconds) {
        rolled = rollup(buckets, step);
        &rolled
    } else {
        buckets
    };
    let skip = rows.len().saturating_sub(MAX_QUERY_POINTS);
    let points = rows[skip..]
        .iter()
        .map(|b| PointOut {
            ts: b.ts,
            value: b.value(agg),
            count: b.count,
            sum: b.sum,
            min: b.min,
            max: b.max,
            last: b.last,
        })
        .collect();
    (points, skip > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_unix_seconds_or_a_clear_error() {
        assert_eq!(parse_since(None).unwrap(), None);
        assert_eq!(parse_since(Some("1763800000.7")).unwrap(), Some(1763800000));
        for bad in ["soon", "-5", "1763800000000", "NaN"] {
            assert_eq!(
                parse_since(Some(bad)).unwrap_err().code,
                Code::InvalidRange,
                "{bad}"
            );
        }
    }

    const NOW: f64 = 1_700_000_000.0;
    const WEEK: i64 = 7 * 86_400;

    fn parse(q: &[(&str, &str)]) -> Result<QueryParams, ApiError> {
        QueryParams::parse(q.iter().copied(), NOW)
    }

    #[test]
    fn with_no_parameters_the_last_seven_days_are_averaged() {
        let p = parse(&[]).unwrap();
        assert_eq!(p.from, NOW - 7.0 * 86_400.0);
        assert!(p.to > NOW);
        assert_eq!(p.agg, Agg::Avg);
        assert_eq!(p.step_for(60, WEEK).unwrap(), 60);
    }

    #[test]
    fn a_step_must_be_a_multiple_of_the_bucket_size() {
        let p = parse(&[("step", "1h")]).unwrap();
        assert_eq!(p.step_for(60, WEEK).unwrap(), 3600);
        let e = parse(&[("step", "90")])
            .unwrap()
            .step_for(60, WEEK)
            .unwrap_err();
        assert_eq!(e.code, "invalid_step");
    }

    #[test]
    fn an_absurd_step_is_cut_to_the_retention_and_stays_a_whole_number_of_buckets() {
        let p = parse(&[("step", "9223372036854775800")]).unwrap();
        assert_eq!(p.step_for(60, WEEK).unwrap(), WEEK);
        let p = parse(&[("step", "999999999w")]).unwrap();
        assert_eq!(p.step_for(60, WEEK).unwrap(), WEEK);
        assert_eq!(p.step_for(7 * 3600, WEEK).unwrap(), 24 * 7 * 3600);
    }

    #[test]
    fn spark_counts_from_0_to_200() {
        assert_eq!(parse_spark(None).unwrap(), 0);
        assert_eq!(parse_spark(Some("48")).unwrap(), 48);
        assert_eq!(parse_spark(Some("201")).unwrap_err().code, "invalid_spark");
        assert_eq!(parse_spark(Some("-1")).unwrap_err().code, "invalid_spark");
    }

    #[test]
    fn a_range_that_ends_before_it_starts_is_rejected() {
        let e = parse(&[("from", "1700000000"), ("to", "1600000000")]).unwrap_err();
        assert_eq!(e.code, "invalid_range");
        assert_eq!(
            parse(&[("from", "then")]).unwrap_err().code,
            "invalid_range"
        );
    }

    #[test]
    fn relative_ranges_count_back_from_now() {
        let p = parse(&[("from", "24h")]).unwrap();
        assert_eq!(p.from, NOW - 86_400.0);
    }

    #[test]
    fn labels_in_the_query_select_a_series() {
        let p = parse(&[("labels", "host:a")]).unwrap();
        assert_eq!(p.labels.unwrap().canonical(), r#"{"host":"a"}"#);
    }

    #[test]
    fn an_answer_holds_at_most_two_thousand_points_the_newest_ones() {
        let buckets: Vec<Bucket> = (0..2500)
            .map(|i| Bucket {
                ts: i * 60,
                count: 1,
                sum: i as f64,
                min: 0.0,
                max: 0.0,
                last: 0.0,
                last_ts: 0.0,
            })
            .collect();
        let (points, truncated) = answer(&buckets, Agg::Sum, 60, 60);
        assert_eq!(points.len(), 2000);
        assert!(truncated);
        assert_eq!(points.last().unwrap().value, 2499.0);
    }

    #[test]
    fn the_range_read_starts_at_a_whole_step() {
        let p = parse(&[("from", "3700"), ("to", "7300")]).unwrap();
        assert_eq!(p.bucket_range(3600), (3600, 7300));
    }
}
