//! Buckets and their aggregates: what a stored bucket keeps (count, sum, min, max, last) and how
//! buckets roll up into coarser steps at query time.

use crate::domain::error::{ApiError, Code};
use serde::{Deserialize, Serialize};

/// The start of the bucket a time falls into.
pub fn bucket_start(ts: f64, bucket_seconds: u32) -> i64 {
    let size = i64::from(bucket_seconds.max(1));
    (ts.floor() as i64).div_euclid(size) * size
}

/// One stored bucket: every aggregate kept, so any of them can be shown later.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub ts: i64,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// The value with the latest timestamp, and that timestamp.
    pub last: f64,
    pub last_ts: f64,
}

/// A bucket as SQL sends it back packed in JSON: `[ts, count, sum, min, max, last, last_ts]`.
pub type Packed = (i64, i64, f64, f64, f64, f64, f64);

impl From<Packed> for Bucket {
    fn from((ts, count, sum, min, max, last, last_ts): Packed) -> Bucket {
        Bucket {
            ts,
            count,
            sum,
            min,
            max,
            last,
            last_ts,
        }
    }
}

impl Bucket {
    /// Folds `other` in, as SQL's upsert does for a bucket that already exists.
    pub fn merge(&mut self, other: &Bucket) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.last_ts >= self.last_ts {
            self.last = other.last;
            self.last_ts = other.last_ts;
        }
    }

    pub fn value(&self, agg: Agg) -> f64 {
        match agg {
            Agg::Avg => {
                if self.count == 0 {
                    0.0
                } else {
                    self.sum / self.count as f64
                }
            }
            Agg::Sum => self.sum,
            Agg::Min => self.min,
            Agg::Max => self.max,
            Agg::Last => self.last,
            Agg::Count => self.count as f64,
        }
    }
}

/// Which aggregate a query shows as `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Avg,
    Sum,
    Min,
    Max,
    Last,
    Count,
}

impl Agg {
    pub fn parse(raw: &str) -> Result<Agg, ApiError> {
        Ok(match raw {
            "avg" | "mean" => Agg::Avg,
            "sum" => Agg::Sum,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "last" => Agg::Last,
            "count" => Agg::Count,
            _ => {
                return Err(ApiError::new(
                    Code::InvalidAgg,
                    "agg must be one of avg, sum, min, max, last, count",
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Agg::Avg => "avg",
            Agg::Sum => "sum",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Last => "last",
            Agg::Count => "count",
        }
    }
}

/// Rolls ascending buckets up into steps of `step` seconds (a multiple of the bucket size).
pub fn rollup(buckets: &[Bucket], step: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for b in buckets {
        let start = b.ts.div_euclid(step) * step;
        match out.last_mut() {
            Some(last) if last.ts == start => last.merge(b),
            _ => out.push(Bucket { ts: start, ..*b }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ts: i64, v: f64) -> Bucket {
        Bucket {
            ts,
            count: 1,
            sum: v,
            min: v,
            max: v,
            last: v,
            last_ts: ts as f64,
        }
    }

    #[test]
    fn a_point_lands_in_the_bucket_that_starts_at_or_before_it() {
        assert_eq!(bucket_start(1_700_000_099.9, 60), 1_700_000_040);
        assert_eq!(bucket_start(1_700_000_040.0, 60), 1_700_000_040);
        assert_eq!(bucket_start(1_700_000_039.9, 60), 1_699_999_980);
        assert_eq!(bucket_start(7199.0, 3600), 3600);
    }

    #[test]
    fn merging_keeps_count_sum_min_max_and_the_latest_value() {
        let mut a = b(0, 5.0);
        a.last_ts = 10.0;
        let mut later = b(0, 2.0);
        later.last_ts = 20.0;
        a.merge(&later);
        assert_eq!(
            (a.count, a.sum, a.min, a.max, a.last),
            (2, 7.0, 2.0, 5.0, 2.0)
        );
        let mut earlier = b(0, 9.0);
        earlier.last_ts = 1.0;
        a.merge(&earlier);
        assert_eq!((a.max, a.last), (9.0, 2.0));
    }

    #[test]
    fn every_aggregate_can_be_read_off_a_bucket() {
        let mut x = b(0, 1.0);
        x.merge(&Bucket {
            last_ts: 5.0,
            ..b(0, 3.0)
        });
        assert_eq!(x.value(Agg::Avg), 2.0);
        assert_eq!(x.value(Agg::Sum), 4.0);
        assert_eq!(x.value(Agg::Min), 1.0);
        assert_eq!(x.value(Agg::Max), 3.0);
        assert_eq!(x.value(Agg::Last), 3.0);
        assert_eq!(x.value(Agg::Count), 2.0);
    }

    #[test]
    fn an_unknown_aggregate_is_a_clear_error() {
        assert_eq!(Agg::parse("median").unwrap_err().code, "invalid_agg");
        assert_eq!(Agg::parse("avg").unwrap(), Agg::Avg);
    }

    #[test]
    fn sixty_minute_buckets_roll_up_into_one_hour() {
        let minutes: Vec<Bucket> = (0..120).map(|i| b(3600 + i * 60, i as f64)).collect();
        let hours = rollup(&minutes, 3600);
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0].ts, 3600);
        assert_eq!(hours[0].count, 60);
        assert_eq!(hours[0].min, 0.0);
        assert_eq!(hours[0].max, 59.0);
        assert_eq!(hours[0].last, 59.0);
        assert_eq!(hours[1].sum, (60..120).sum::<i64>() as f64);
    }

    #[test]
    fn a_rollup_skips_empty_steps_rather_than_inventing_zeroes() {
        let hours = rollup(&[b(0, 1.0), b(7200, 2.0)], 3600);
        assert_eq!(
            hours.iter().map(|h| h.ts).collect::<Vec<_>>(),
            vec![0, 7200]
        );
    }
}
