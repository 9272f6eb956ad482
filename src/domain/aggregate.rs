//! Pre-aggregated points: many values a client has folded into count, sum, min, max and last,
//! checked so that they merge into a bucket exactly as the values themselves would have.

use crate::domain::bucket::{bucket_start, Bucket};
use crate::domain::error::{ApiError, Code};

/// The most values one pre-aggregated point may stand for. Far beyond what a client folds between
/// flushes, and low enough that SQLite's 64-bit sum of counts cannot overflow in a bucket.
pub const MAX_COUNT: f64 = 1e12;

/// `count` values folded into one point: their sum, smallest, largest and latest value.
///
/// Only `parse` makes one, so every `Aggregate` could have come from `count` real values within
/// ±MAX_VALUE: merged into a bucket it changes count, sum, min, max and last exactly as sending
/// those values one by one would have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
}

impl Aggregate {
    /// Checks the fields of a pre-aggregated point; `max_value` is MAX_VALUE.
    ///
    /// - `count` is a whole number from 1 to `MAX_COUNT`;
    /// - `min`, `max` and `last` are values like any point's (finite, within ±MAX_VALUE), with
    ///   `min <= last <= max`;
    /// - `sum` is one that `count` values between `min` and `max` can have: since one of them is
    ///   `min` and one is `max`, it lies between `(count-1)*min + max` and `min + (count-1)*max`,
    ///   give or take the rounding of adding `count` floats one by one. One value (`count` 1)
    ///   has `min == max`, and is stored as exactly that value.
    ///
    /// Without `last`, the point's mean (`sum / count`) stands in for it: a value inside
    /// `[min, max]` that `agg=last` can show, exact when `count` is 1, and what a reader of a
    /// bucket that holds only this point would take as its typical value.
    pub fn parse(
        count: f64,
        sum: f64,
        min: f64,
        max: f64,
        last: Option<f64>,
        max_value: f64,
    ) -> Result<Self, ApiError> {
        if !(count.fract() == 0.0 && (1.0..=MAX_COUNT).contains(&count)) {
            return Err(ApiError::new(
                Code::InvalidCount,
                format!(
                    "count must be a whole number from 1 to {MAX_COUNT:.0}: how many values this point folds"
                ),
            ));
        }
        let min = value("min", min, max_value)?;
        let max = value("max", max, max_value)?;
        let last = last.map(|l| value("last", l, max_value)).transpose()?;
        if !sum.is_finite() {
            return Err(ApiError::new(
                Code::InvalidValue,
                "sum must be a finite number",
            ));
        }
        if min > max {
            return Err(inconsistent(format!("min {min} is larger than max {max}")));
        }
        if let Some(l) = last {
            if !(min..=max).contains(&l) {
                return Err(inconsistent(format!(
                    "last {l} is outside [min, max] = [{min}, {max}]: it is one of the values"
                )));
            }
        }
        if count == 1.0 {
            if min != max {
                return Err(inconsistent(
                    "one value (count 1) has min equal to max; send it as value instead",
                ));
            }
            if (sum - min).abs() > slack(1.0, min, max) {
                return Err(inconsistent(format!(
                    "the sum of one value is that value ({min}), not {sum}"
                )));
            }
            return Ok(Aggregate {
                count: 1,
                sum: min,
                min,
                max,
                last: min,
            });
        }
        // One value is the min and one the max; the others lie anywhere between.
        let low = (count - 1.0) * min + max;
        let high = min + (count - 1.0) * max;
        let tolerance = slack(count, min, max);
        if sum < low - tolerance || sum > high + tolerance {
            return Err(inconsistent(format!(
                "sum {sum} cannot be the sum of {count:.0} values from {min} to {max} (it lies between {low} and {high})"
            )));
        }
        let last = last.unwrap_or_else(|| (sum / count).clamp(min, max));
        Ok(Aggregate {
            count: count as i64,
            sum,
            min,
            max,
            last,
        })
    }

    pub fn count(&self) -> i64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn min(&self) -> f64 {
        self.min
    }

    pub fn max(&self) -> f64 {
        self.max
    }

    pub fn last(&self) -> f64 {
        self.last
    }

    /// This point as the partial bucket of its whole second, its time `ts` being when `last`
    /// was taken, as a single point's bucket is.
    pub fn bucket(&self, ts: f64) -> Bucket {
        Bucket {
            ts: bucket_start(ts, 1),
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            last: self.last,
            last_ts: ts,
        }
    }
}

fn value(field: &str, n: f64, max_value: f64) -> Result<f64, ApiError> {
    if !n.is_finite() {
        return Err(ApiError::new(
            Code::InvalidValue,
            format!("{field} must be a finite number"),
        ));
    }
    if n.abs() > max_value {
        return Err(ApiError::new(
            Code::ValueOutOfRange,
            format!("{field} {n} is beyond ±{max_value} (MAX_VALUE)"),
        ));
    }
    Ok(n)
}

/// How far a sum of `count` values of at most max(|min|, |max|) may stray from its exact bounds
/// by rounding alone: adding n floats one by one errs by at most about n·ε times the sum of their
/// magnitudes, and computing the bounds adds a few ε more.
fn slack(count: f64, min: f64, max: f64) -> f64 {
    let magnitude = min.abs().max(max.abs());
    (count + 4.0) * f64::EPSILON * count * magnitude
}

fn inconsistent(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InconsistentAggregate, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: f64 = 1e9;

    fn agg(
        count: f64,
        sum: f64,
        min: f64,
        max: f64,
        last: Option<f64>,
    ) -> Result<Aggregate, ApiError> {
        Aggregate::parse(count, sum, min, max, last, MAX)
    }

    /// What sending `values` one by one leaves in a bucket, given as their fold.
    fn fold(values: &[f64]) -> Aggregate {
        let sum = values.iter().sum();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let last = values.last().copied();
        agg(values.len() as f64, sum, min, max, last).unwrap()
    }

    #[test]
    fn the_example_of_the_issue_is_accepted_as_sent() {
        let a = agg(120.0, 5400.5, 12.1, 410.0, Some(33.0)).unwrap();
        assert_eq!(
            (a.count(), a.sum(), a.min(), a.max(), a.last()),
            (120, 5400.5, 12.1, 410.0, 33.0)
        );
    }

    #[test]
    fn a_count_that_is_not_a_positive_whole_number_is_refused() {
        for count in [0.0, -3.0, 2.5, 1e13, f64::NAN, f64::INFINITY] {
            let e = agg(count, 10.0, 1.0, 9.0, None).unwrap_err();
            assert_eq!(e.code, Code::InvalidCount, "{count}");
        }
        assert!(agg(120.0, 5400.5, 12.1, 410.0, None).is_ok());
        assert!(agg(MAX_COUNT, MAX_COUNT * 5.0, 0.0, 10.0, None).is_ok());
    }

    #[test]
    fn min_max_and_last_are_checked_like_any_value_and_named() {
        let e = agg(2.0, 0.0, -2e9, 2e9, None).unwrap_err();
        assert_eq!(e.code, Code::ValueOutOfRange);
        assert!(e.message.starts_with("min "), "{}", e.message);
        let e = agg(2.0, 0.0, 0.0, f64::INFINITY, None).unwrap_err();
        assert_eq!(e.code, Code::InvalidValue);
        assert!(e.message.starts_with("max "), "{}", e.message);
        let e = agg(2.0, 1.0, 0.0, 1.0, Some(1e10)).unwrap_err();
        assert_eq!(e.code, Code::ValueOutOfRange);
        assert!(e.message.starts_with("last "), "{}", e.message);
        let e = agg(2.0, f64::NAN, 0.0, 1.0, None).unwrap_err();
        assert_eq!(e.code, Code::InvalidValue);
        assert!(e.message.starts_with("sum "), "{}", e.message);
    }

    #[test]
    fn a_sum_beyond_max_value_is_fine_when_the_values_are_not() {
        let a = agg(3.0, 3e9, 1e9, 1e9, None).unwrap();
        assert_eq!(a.sum(), 3e9);
    }

    #[test]
    fn min_larger_than_max_is_inconsistent() {
        let e = agg(2.0, 10.0, 6.0, 4.0, None).unwrap_err();
        assert_eq!(e.code, Code::InconsistentAggregate);
    }

    #[test]
    fn last_outside_min_and_max_is_inconsistent() {
        let e = agg(2.0, 10.0, 4.0, 6.0, Some(7.0)).unwrap_err();
        assert_eq!(e.code, Code::InconsistentAggregate);
        assert!(agg(2.0, 10.0, 4.0, 6.0, Some(6.0)).is_ok());
    }

    #[test]
    fn a_sum_no_values_between_min_and_max_can_have_is_inconsistent() {
        // Three values from 1 to 9 include a 1 and a 9: their sum is 11 to 19.
        for sum in [2.9, 10.9, 19.1, 28.0] {
            let e = agg(3.0, sum, 1.0, 9.0, None).unwrap_err();
            assert_eq!(e.code, Code::InconsistentAggregate, "{sum}");
        }
        for sum in [11.0, 15.0, 19.0] {
            assert!(agg(3.0, sum, 1.0, 9.0, None).is_ok(), "{sum}");
        }
    }

    #[test]
    fn one_value_must_have_min_equal_to_max_and_is_stored_as_that_value() {
        let e = agg(1.0, 5.0, 4.0, 6.0, None).unwrap_err();
        assert_eq!(e.code, Code::InconsistentAggregate);
        let e = agg(1.0, 5.0, 4.0, 4.0, None).unwrap_err();
        assert_eq!(e.code, Code::InconsistentAggregate);
        let a = agg(1.0, 0.1 + 0.2, 0.3, 0.3, None).unwrap();
        assert_eq!((a.sum(), a.last()), (0.3, 0.3));
    }

    #[test]
    fn without_last_the_mean_stands_in_for_it() {
        let a = agg(4.0, 10.0, 1.0, 4.0, None).unwrap();
        assert_eq!(a.last(), 2.5);
        // Rounding cannot push the mean outside [min, max].
        let v = [0.1; 10];
        let f = fold(&v);
        let a = agg(10.0, f.sum(), 0.1, 0.1, None).unwrap();
        assert_eq!(a.last(), 0.1);
    }

    #[test]
    fn sums_rounded_by_adding_many_floats_are_still_accepted() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for n in [2, 10, 1_000, 100_000] {
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 2_000_000_001) as f64 / 1_000.0 - 1e6 + 0.1
                })
                .collect();
            let a = fold(&values);
            assert_eq!(a.count(), n as i64);
            // The reverse order rounds otherwise; both are sums of the same values.
            let reversed: f64 = values.iter().rev().sum();
            assert!(
                agg(n as f64, reversed, a.min(), a.max(), None).is_ok(),
                "{n}"
            );
        }
        // All values equal: the sum is n times the value, give or take rounding.
        assert_eq!(fold(&[1e9 / 3.0; 1000]).count(), 1000);
    }

    #[test]
    fn merged_into_a_bucket_it_is_what_its_values_would_have_made() {
        let values = [12.5, 3.0, 7.25, 99.0, 0.5];
        let mut one_by_one: Option<Bucket> = None;
        for (i, v) in values.iter().enumerate() {
            let b = fold(&[*v]).bucket(1_000.0 + i as f64 / 10.0);
            match &mut one_by_one {
                Some(acc) => acc.merge(&b),
                None => one_by_one = Some(b),
            }
        }
        let folded = fold(&values).bucket(1_000.4);
        assert_eq!(Some(folded), one_by_one);
    }
}
