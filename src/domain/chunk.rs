//! Packed buckets: a series keeps its buckets an hour to a row (a chunk), and every reader cuts
//! what it reads to the series' newest `cap` buckets exactly, as if the oldest had been deleted
//! one at a time.
//!
//! Why: D1 bills a written row 1,000 times a read row, and a deleted row is a written row. With a
//! row per bucket, a point that opens a bucket in a full series wrote the bucket and deleted the
//! oldest one (plus a counter, twice). With a chunk, the point updates one row; the oldest chunk
//! goes as a whole, once an hour. Chunks past the cap are dropped lazily, so the cut is the
//! readers' job, and `upto` makes it exact without counting: the buckets of a chunk are the
//! series' buckets number `upto - n + 1 ..= upto` in time order (deleted ones still counted), so
//! the newest chunk's `upto` minus `cap` is the number at or below which a bucket is past the cap.

use crate::domain::bucket::Bucket;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A chunk holds the buckets that start in one hour: its `start` is the hour, whatever the
/// chart's bucket size, so a bucket's row follows from its start alone (a bucket size change or a
/// changed default can never put one bucket in two rows).
pub const CHUNK_SECONDS: i64 = 3600;

/// The hour a bucket's row starts at.
pub fn chunk_start(bucket_ts: i64) -> i64 {
    bucket_ts.div_euclid(CHUNK_SECONDS) * CHUNK_SECONDS
}

/// A chunk as SQL sends it: `[n, upto, {"<bucket ts>": [count, sum, min, max, last, last_ts]}]`.
#[derive(Debug, Deserialize)]
pub struct Chunk(pub i64, pub i64, pub Packed);

/// The buckets of one chunk, in the order stored (keys are bucket starts as text).
#[derive(Debug, Default)]
pub struct Packed(pub Vec<Bucket>);

impl<'de> Deserialize<'de> for Packed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Packed, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Packed;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of buckets keyed by their start")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Packed, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(60));
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    // SQLite writes counts of REAL parameters as 2.0: read every number as f64.
                    let (count, sum, min, max, last, last_ts): (f64, f64, f64, f64, f64, f64) =
                        map.next_value()?;
                    match key.parse::<i64>() {
                        Ok(ts) => {
                            out.push(Bucket::from(One(ts, (count, sum, min, max, last, last_ts))))
                        }
                        Err(_) => return Err(serde::de::Error::custom("a bucket key is no ts")),
                    }
                }
                Ok(Packed(out))
            }
        }
        d.deserialize_map(Keys)
    }
}

/// The newest bucket of a chunk as SQL sends it: `[ts, [count, sum, min, max, last, last_ts]]`.
#[derive(Debug, Deserialize)]
pub struct One(pub i64, pub (f64, f64, f64, f64, f64, f64));

impl From<One> for Bucket {
    fn from(One(ts, (count, sum, min, max, last, last_ts)): One) -> Bucket {
        Bucket {
            ts,
            count: count as i64,
            sum,
            min,
            max,
            last,
            last_ts,
        }
    }
}

/// The buckets of `chunks` (any order) that are among the series' newest `cap`, ascending by
/// ts. `top` is the `upto` of the series' newest chunk.
pub fn kept(chunks: Vec<Chunk>, top: i64, cap: i64) -> Vec<Bucket> {
    // A bucket numbered at or below this is past the cap.
    let past = top.saturating_sub(cap);
    let mut out = Vec::new();
    for Chunk(_, upto, Packed(mut buckets)) in chunks {
        buckets.sort_unstable_by_key(|b| b.ts);
        let first = upto - buckets.len() as i64 + 1;
        let skip = (past + 1 - first).clamp(0, buckets.len() as i64) as usize;
        out.extend(buckets.into_iter().skip(skip));
    }
    out.sort_unstable_by_key(|b| b.ts);
    out
}

/// What the chart list says of a series' extent: how many buckets it keeps, and the first.
#[derive(Debug, PartialEq)]
pub struct Extent {
    pub points: i64,
    pub first_ts: Option<i64>,
}

/// The extent from `bottom`, the oldest chunk that holds a kept bucket.
pub fn extent(bottom: Option<Chunk>, top: i64, cap: i64) -> Extent {
    let Some(bottom) = bottom else {
        return Extent {
            points: 0,
            first_ts: None,
        };
    };
    // Chunks are numbered without gaps, so everything from the first bucket of `bottom` on is
    // stored: that many, or the cap.
    let held = top - (bottom.1 - bottom.2 .0.len() as i64);
    let first = kept(vec![bottom], top, cap).first().map(|b| b.ts);
    Extent {
        points: held.clamp(0, cap),
        first_ts: first,
    }
}

/// A chart list's sparkline from the kept buckets (ascending) of the chunks read for it: the
/// newest `n` buckets, of those that end after `since` when given, as (ts, average) ascending.
pub fn sparkline(
    buckets: Vec<Bucket>,
    n: u32,
    since: Option<i64>,
    bucket_seconds: u32,
) -> Vec<(i64, f64)> {
    let after = since.map_or(i64::MIN, |t| t - i64::from(bucket_seconds));
    let line: Vec<(i64, f64)> = buckets
        .into_iter()
        .filter(|b| b.ts > after && b.count > 0)
        .map(|b| (b.ts, b.sum / b.count as f64))
        .collect();
    let skip = line.len().saturating_sub(n as usize);
    line.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(upto: i64, ts: &[i64]) -> Chunk {
        let buckets = ts
            .iter()
            .map(|&t| Bucket {
                ts: t,
                count: 1,
                sum: t as f64,
                min: t as f64,
                max: t as f64,
                last: t as f64,
                last_ts: t as f64,
            })
            .collect();
        Chunk(ts.len() as i64, upto, Packed(buckets))
    }

    #[test]
    fn a_chunk_reads_from_the_json_sql_writes() {
        let c: Chunk = serde_json::from_str(
            r#"[2,7,{"3660":[3.0,6.0,-1.0,5.0,5.0,3661.0],"3600":[2,0.3,0.1,0.2,0.2,3601.5]}]"#,
        )
        .unwrap();
        assert_eq!((c.0, c.1), (2, 7));
        assert_eq!(c.2 .0[0].ts, 3660);
        assert_eq!(c.2 .0[0].count, 3);
        assert_eq!(c.2 .0[1].sum, 0.3);
        let bad: Result<Chunk, _> = serde_json::from_str(r#"[1,1,{"x":[1,1,1,1,1,1]}]"#);
        assert!(bad.is_err());
    }

    #[test]
    fn a_reader_sees_exactly_the_newest_cap_buckets_of_a_series_holding_more() {
        // Buckets 1..=8 stored in three chunks, the cap is 5: buckets 4..=8 are kept.
        let chunks = vec![
            chunk(3, &[300, 100, 200]),
            chunk(6, &[400, 600, 500]),
            chunk(8, &[700, 800]),
        ];
        let ts: Vec<i64> = kept(chunks, 8, 5).iter().map(|b| b.ts).collect();
        assert_eq!(ts, vec![400, 500, 600, 700, 800]);
    }

    #[test]
    fn the_cut_falls_inside_a_chunk_and_counts_deleted_buckets() {
        // Buckets 1..=10 were stored; the chunk of 1..=4 is gone. Cap 5 keeps 6..=10.
        let chunks = vec![chunk(7, &[50, 60, 70]), chunk(10, &[80, 90, 100])];
        let ts: Vec<i64> = kept(chunks, 10, 5).iter().map(|b| b.ts).collect();
        assert_eq!(ts, vec![60, 70, 80, 90, 100]);
    }

    #[test]
    fn a_series_below_its_cap_keeps_everything() {
        let ts: Vec<i64> = kept(vec![chunk(2, &[1, 2])], 2, 1000)
            .iter()
            .map(|b| b.ts)
            .collect();
        assert_eq!(ts, vec![1, 2]);
    }

    #[test]
    fn the_extent_counts_what_is_kept_and_names_the_first_kept_bucket() {
        assert_eq!(
            extent(Some(chunk(6, &[40, 50, 60])), 9, 5),
            Extent {
                points: 5,
                first_ts: Some(50)
            }
        );
        assert_eq!(
            extent(Some(chunk(3, &[10, 20, 30])), 4, 1000),
            Extent {
                points: 4,
                first_ts: Some(10)
            }
        );
        assert_eq!(
            extent(None, 0, 5),
            Extent {
                points: 0,
                first_ts: None
            }
        );
    }

    #[test]
    fn a_sparkline_is_the_newest_buckets_that_end_after_since_as_averages() {
        let b = |ts: i64, sum: f64| Bucket {
            ts,
            count: 2,
            sum,
            min: 0.0,
            max: 0.0,
            last: 0.0,
            last_ts: 0.0,
        };
        let all = vec![b(0, 2.0), b(60, 4.0), b(120, 6.0), b(180, 8.0)];
        assert_eq!(
            sparkline(all.clone(), 2, None, 60),
            vec![(120, 3.0), (180, 4.0)]
        );
        // A bucket [60, 120) ends after 100: it may have changed since, so it is sent again.
        assert_eq!(
            sparkline(all, 10, Some(100), 60),
            vec![(60, 2.0), (120, 3.0), (180, 4.0)]
        );
    }

    #[test]
    fn a_bucket_rows_by_the_hour_its_start_falls_in() {
        assert_eq!(chunk_start(3599), 0);
        assert_eq!(chunk_start(3600), 3600);
        assert_eq!(chunk_start(1_763_800_000), 1_763_798_400);
    }
}
