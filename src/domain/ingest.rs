//! Ingest payloads: one point, an array of points or `{"points":[...]}`, parsed into points grouped
//! by series. A batch with one bad point is rejected whole, so nothing is half-written. A point
//! carries one `value`, or is pre-aggregated: `count`, `sum`, `min`, `max` and optionally `last`
//! of values a client folded (see `aggregate`).
//!
//! The body is read in one pass straight from its text, strings borrowed from it: no JSON tree,
//! and a series' chart name and labels are checked and built once, not once per point. That keeps
//! a batch of 10,000 points well inside the CPU a Worker gets per request
//! (`cargo bench --bench ingest_parse`).

use crate::domain::aggregate::Aggregate;
use crate::domain::bucket::{bucket_start, Bucket};
use crate::domain::config::{Config, MAX_BODY_BYTES};
use crate::domain::error::{ApiError, Code};
use crate::domain::names::{
    any_scalar, push_json_str, AnyJson, ChartName, Labels, LabelsInput, SortedLabels,
};
use crate::domain::time::Timestamp;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hasher};

/// A point's value: finite and within ±MAX_VALUE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value(f64);

impl Value {
    pub fn parse(n: f64, max: f64) -> Result<Self, ApiError> {
        if !n.is_finite() {
            return Err(ApiError::new(
                Code::InvalidValue,
                "value must be a finite number",
            ));
        }
        if n.abs() > max {
            return Err(ApiError::new(
                Code::ValueOutOfRange,
                format!("value {n} is beyond ±{max} (MAX_VALUE)"),
            ));
        }
        Ok(Value(n))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// The points of one series in a request, in the order they came: single values, and apart from
/// them the pre-aggregated points (kept apart so that the common case stays small and fast).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    pub chart: ChartName,
    pub labels: Labels,
    pub points: Vec<(Timestamp, Value)>,
    pub aggregates: Vec<(Timestamp, Aggregate)>,
}

/// A parsed ingest request.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub series: Vec<SeriesPoints>,
    pub len: usize,
}

impl Batch {
    /// `now` is unix seconds, passed in so that tests pin the clock.
    ///
    /// Whatever their places in the body, errors come in this order: not JSON, not a shape of
    /// body we take, no points, too many points, then the first bad point (with its index when
    /// the body is a batch).
    pub fn parse(body: &[u8], cfg: &Config, now: f64) -> Result<Batch, ApiError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(too_large_body());
        }
        let invalid_json = |e: serde_json::Error| {
            let message = if body.iter().all(u8::is_ascii_whitespace) {
                r#"the body is empty; send JSON like {"chart":"users","value":42}"#.to_string()
            } else {
                format!(
                    r#"the body is not valid JSON ({e}); send JSON like {{"chart":"users","value":42}}"#
                )
            };
            ApiError::new(Code::InvalidJson, message)
        };
        // Checked here at once, the strings need no check one by one (which serde_json's reader
        // of bytes makes, at a far higher cost).
        let text = std::str::from_utf8(body).map_err(|_| invalid_json(not_utf8(body)))?;
        let mut points = Collector::new(cfg, now);
        let mut de = serde_json::Deserializer::from_str(text);
        let shape = BodySeed(&mut points)
            .deserialize(&mut de)
            .and_then(|shape| de.end().map(|()| shape))
            .map_err(invalid_json)?;
        match shape {
            Shape::Batch => {}
            Shape::Object {
                points: Some(is_array),
                chart: false,
                others,
                ..
            } => {
                if !is_array {
                    return Err(ApiError::new(
                        Code::InvalidBody,
                        "points must be an array of points",
                    ));
                }
                if others {
                    return Err(ApiError::new(
                        Code::UnknownField,
                        r#"a {"points":[...]} body holds nothing else"#,
                    ));
                }
            }
            Shape::Object {
                point,
                points: held_points,
                ..
            } => {
                // One point. Its error has no index, unless it also held `points` (then its
                // unknown field): that answer always carried index 0.
                points.reset();
                points.point = *point;
                points.add_point();
                if held_points.is_none() {
                    if let Some(e) = &mut points.error {
                        e.index = None;
                    }
                }
            }
            Shape::Other => {
                return Err(ApiError::new(
                    Code::InvalidBody,
                    r#"send a point {"chart":"users","value":42}, an array of points, or {"points":[...]}"#,
                ))
            }
        }
        points.finish()
    }

    /// Whether every series holds a single point or aggregate, so that SQL has nothing to fold.
    pub fn one_partial_each(&self) -> bool {
        self.series
            .iter()
            .all(|s| s.points.len() + s.aggregates.len() == 1)
    }

    /// Several requests' batches as one, series by series, in the order they came, so that one
    /// transaction can write them all (group commit).
    pub fn combine<'a>(batches: impl IntoIterator<Item = &'a Batch>) -> Batch {
        let mut index: HashMap<(&ChartName, &Labels), usize> = HashMap::new();
        let mut series: Vec<SeriesPoints> = Vec::new();
        let mut len = 0;
        for b in batches {
            len += b.len;
            for s in &b.series {
                match index.get(&(&s.chart, &s.labels)) {
                    Some(&i) => {
                        series[i].points.extend_from_slice(&s.points);
                        series[i].aggregates.extend_from_slice(&s.aggregates);
                    }
                    None => {
                        index.insert((&s.chart, &s.labels), series.len());
                        series.push(s.clone());
                    }
                }
            }
        }
        Batch { series, len }
    }

    /// The charts this batch writes, each once, sorted.
    pub fn chart_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .series
            .iter()
            .map(|s| s.chart.as_str().to_string())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The batch as one JSON parameter for SQL (`json_each`): D1 binds at most 100 parameters per
    /// statement, but one parameter may carry any number of points. Points of a series that share
    /// a second are merged here first: every bucket size is a whole number of seconds, so SQL only
    /// has to fold these partial buckets into the chart's buckets.
    ///
    /// `[{"c":chart,"l":"canonical labels","p":[[second,count,sum,min,max,last,last_ts],...]},...]`,
    /// spelled byte for byte as serde_json spells it, written by hand into one string.
    pub fn to_sql_json(&self) -> String {
        // With no cap there is exactly one parameter.
        self.to_sql_params(usize::MAX)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// The same text as `to_sql_json`, cut into parameters of at most `cap` bytes each (D1 takes
    /// at most 2,000,000 bytes in one value). A series that does not fit goes on in the next
    /// parameter under its own `{"c","l"}` header: SQL folds buckets of one series from several
    /// parameters as it folds them from one. Only a single bucket larger than `cap` exceeds it.
    pub fn to_sql_params(&self, cap: usize) -> Vec<String> {
        // A bucket of one point with a ten-digit time takes about 60 bytes; a little too much
        // room costs less than growing.
        let size = self
            .series
            .iter()
            .map(|s| {
                96 + 2 * s.chart.as_str().len() + 72 * s.points.len() + 128 * s.aggregates.len()
            })
            .sum::<usize>();
        let mut params = Vec::new();
        let mut out = String::with_capacity(size.min(cap).saturating_add(2));
        let mut header = String::new();
        let mut bucket = String::new();
        let mut buckets = Vec::new();
        let mut slots = HashMap::new();
        out.push('[');
        for s in &self.series {
            header.clear();
            header.push_str(r#"{"c":"#);
            push_json_str(&mut header, s.chart.as_str());
            header.push_str(r#","l":"#);
            push_json_str(&mut header, &s.labels.canonical());
            header.push_str(r#","p":["#);
            merge_by_second(s, &mut buckets, &mut slots);
            let mut open = false;
            for b in &buckets {
                bucket.clear();
                // Writing to a String cannot fail.
                if b.count == 1 {
                    // One point: its value is the sum, the min, the max and the last.
                    let _ = write!(bucket, "[{},1", b.ts);
                    let value = bucket.len();
                    push_float(&mut bucket, b.last);
                    let end = bucket.len();
                    for _ in 0..3 {
                        bucket.extend_from_within(value..end);
                    }
                } else {
                    let _ = write!(bucket, "[{},{}", b.ts, b.count);
                    for x in [b.sum, b.min, b.max, b.last] {
                        push_float(&mut bucket, x);
                    }
                }
                push_float(&mut bucket, b.last_ts);
                bucket.push(']');
                // What adding this bucket takes, with what closes the group and the array.
                let need = bucket.len() + if open { 1 } else { header.len() + 1 } + 3;
                if out.len() > 1 && out.len() + need > cap {
                    if open {
                        out.push_str("]}");
                    }
                    out.push(']');
                    params.push(std::mem::replace(&mut out, String::from("[")));
                    open = false;
                }
                if open {
                    out.push(',');
                } else {
                    if out.len() > 1 {
                        out.push(',');
                    }
                    out.push_str(&header);
                    open = true;
                }
                out.push_str(&bucket);
            }
            if !open {
                if out.len() > 1 {
                    out.push(',');
                }
                out.push_str(&header);
            }
            out.push_str("]}");
        }
        out.push(']');
        params.push(out);
        params
    }
}

pub fn too_large_body() -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the body is larger than {MAX_BODY_BYTES} bytes; split it into smaller batches"),
    )
}

/// Folds a series' points into one partial bucket per whole second, in the order the seconds first
/// appear, into `out` (emptied first): its single values, then its pre-aggregated points, which
/// fold in as the values they stand for would have. Points mostly come in time order, so a second
/// is looked up in `slots` only once the seconds stopped rising.
fn merge_by_second(series: &SeriesPoints, out: &mut Vec<Bucket>, slots: &mut HashMap<i64, usize>) {
    out.clear();
    slots.clear();
    let mut rising = true;
    let singles = series.points.iter().map(|(ts, v)| Bucket {
        ts: bucket_start(ts.secs(), 1),
        count: 1,
        sum: v.get(),
        min: v.get(),
        max: v.get(),
        last: v.get(),
        last_ts: ts.secs(),
    });
    let folded = series.aggregates.iter().map(|(ts, a)| a.bucket(ts.secs()));
    for b in singles.chain(folded) {
        if rising {
            match out.last_mut() {
                Some(last) if last.ts == b.ts => {
                    last.merge(&b);
                    continue;
                }
                Some(last) if last.ts > b.ts => {
                    rising = false;
                    slots.extend(out.iter().enumerate().map(|(i, b)| (b.ts, i)));
                }
                _ => {
                    out.push(b);
                    continue;
                }
            }
        }
        match slots.get(&b.ts) {
            Some(&i) => out[i].merge(&b),
            None => {
                slots.insert(b.ts, out.len());
                out.push(b);
            }
        }
    }
}

/// Writes a comma and a float as serde_json spells it: the shortest text that reads back to the
/// same number, `.0` after whole numbers, and `null` for what JSON cannot hold.
fn push_float(out: &mut String, x: f64) {
    // Writing to a String cannot fail.
    let _ = if x.fract() == 0.0 && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
        // Whole numbers below 1e15 are their digits; serde_json turns to exponents later.
        write!(out, ",{}.0", x as i64)
    } else {
        match serde_json::Number::from_f64(x) {
            Some(n) => write!(out, ",{n}"),
            None => out.write_str(",null"),
        }
    };
}

/// What the body turned out to be, once read.
enum Shape<'a> {
    /// An array: its points are in the collector.
    Batch,
    /// An object: one point, or `{"points":[...]}` whose points are in the collector.
    Object {
        /// Boxed: a point's fields take some 300 bytes, the other shapes none.
        point: Box<RawPoint<'a>>,
        /// Whether it held `points`, and whether that (the last one) was an array.
        points: Option<bool>,
        /// Whether it held `chart`, which makes it a point whatever else it holds.
        chart: bool,
        /// Whether it held anything but `points`.
        others: bool,
    },
    /// A scalar.
    Other,
}

/// Where serde_json's reader of bytes finds a body that is not UTF-8 to stop being JSON: in a
/// string (it checks every one) or between values. Its error is the one this body always got.
fn not_utf8(body: &[u8]) -> serde_json::Error {
    let mut de = serde_json::Deserializer::from_slice(body);
    match AnyJson.deserialize(&mut de).and_then(|()| de.end()) {
        Err(e) => e,
        // Not reached: bytes that are not UTF-8 are in no JSON text.
        Ok(()) => serde::de::Error::custom("it is not UTF-8"),
    }
}

/// Takes the points of a batch one by one as they are read, checks them and groups them by
/// series. Past the first bad point, or past MAX_BATCH, the answer is an error whatever follows,
/// so the rest is only read to make sure that the body is JSON (which decides first).
struct Collector<'c, 'a> {
    cfg: &'c Config,
    now: f64,
    /// Points seen, good or bad.
    count: usize,
    /// The first bad point's error, with its index.
    error: Option<ApiError>,
    groups: Groups,
    /// The point being read; its room is reused for the next.
    point: RawPoint<'a>,
}

impl<'c, 'a> Collector<'c, 'a> {
    fn new(cfg: &'c Config, now: f64) -> Self {
        Collector {
            cfg,
            now,
            count: 0,
            error: None,
            groups: Groups::default(),
            point: RawPoint::default(),
        }
    }

    /// Forgets every point: JSON readers keep the last of repeated `points` fields.
    fn reset(&mut self) {
        self.count = 0;
        self.error = None;
        self.groups = Groups::default();
    }

    fn wants_more(&self) -> bool {
        self.error.is_none() && self.count < self.cfg.max_batch as usize
    }

    /// Reads the elements of a batch.
    fn read_batch<A: SeqAccess<'a>>(&mut self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let more = if self.wants_more() {
                seq.next_element_seed(PointSeed(self))?
            } else {
                seq.next_element_seed(AnyJson)?.map(|()| self.count += 1)
            };
            if more.is_none() {
                return Ok(());
            }
        }
    }

    /// Reads a point into `self.point` and adds it.
    fn read_point<A: MapAccess<'a>>(&mut self, mut map: A) -> Result<(), A::Error> {
        self.point.clear();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            self.point.read(key, &mut map)?;
        }
        self.add_point();
        Ok(())
    }

    fn add_point(&mut self) {
        let i = self.count;
        self.count += 1;
        if let Err(e) = self.point.add_to(&mut self.groups, self.cfg, self.now) {
            self.error = Some(e.at(i));
        }
    }

    fn add_not_a_point(&mut self) {
        self.error = Some(
            ApiError::new(
                Code::InvalidPoint,
                r#"a point must be an object like {"chart":"users","value":42}"#,
            )
            .at(self.count),
        );
        self.count += 1;
    }

    fn finish(self) -> Result<Batch, ApiError> {
        if self.count == 0 {
            return Err(ApiError::new(Code::EmptyBatch, "the batch holds no points"));
        }
        if self.count > self.cfg.max_batch as usize {
            return Err(ApiError::new(
                Code::BatchTooLarge,
                format!(
                    "{} points in one request; at most {} are accepted (split the batch)",
                    self.count, self.cfg.max_batch
                ),
            ));
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(Batch {
            series: self.groups.series,
            len: self.count,
        })
    }
}

/// A field of a point as it came, as much of it as the checks need; strings are borrowed from the
/// body when they hold no escapes.
#[derive(Debug, Clone, PartialEq)]
enum Field<'a> {
    Number(f64),
    Text(Cow<'a, str>),
    Null,
    /// A boolean, an array or an object.
    Other,
}

/// A point's fields as they came. They are checked once the whole point is read, because JSON
/// readers keep the last of repeated fields.
#[derive(Debug, Default)]
struct RawPoint<'a> {
    chart: Option<Field<'a>>,
    value: Option<Field<'a>>,
    ts: Option<Field<'a>>,
    /// Another name for `ts`.
    timestamp: Option<Field<'a>>,
    /// The fields of a pre-aggregated point, in place of `value`.
    count: Option<Field<'a>>,
    sum: Option<Field<'a>>,
    min: Option<Field<'a>>,
    max: Option<Field<'a>>,
    last: Option<Field<'a>>,
    labels: LabelsInput<'a>,
    /// The unknown field that comes first in alphabetical order (the one named before).
    unknown: Option<Cow<'a, str>>,
}

impl<'a> RawPoint<'a> {
    fn clear(&mut self) {
        self.chart = None;
        self.value = None;
        self.ts = None;
        self.timestamp = None;
        self.count = None;
        self.sum = None;
        self.min = None;
        self.max = None;
        self.last = None;
        self.labels.clear();
        self.unknown = None;
    }

    /// Reads the value of the field `key` from `map`.
    fn read<A: MapAccess<'a>>(&mut self, key: Key<'a>, map: &mut A) -> Result<(), A::Error> {
        match key {
            Key::Chart => map.next_value_seed(FieldSeed(&mut self.chart)),
            Key::Value => map.next_value_seed(FieldSeed(&mut self.value)),
            Key::Ts => map.next_value_seed(FieldSeed(&mut self.ts)),
            Key::Timestamp => map.next_value_seed(FieldSeed(&mut self.timestamp)),
            Key::Count => map.next_value_seed(FieldSeed(&mut self.count)),
            Key::Sum => map.next_value_seed(FieldSeed(&mut self.sum)),
            Key::Min => map.next_value_seed(FieldSeed(&mut self.min)),
            Key::Max => map.next_value_seed(FieldSeed(&mut self.max)),
            Key::Last => map.next_value_seed(FieldSeed(&mut self.last)),
            Key::Labels => map.next_value_seed(self.labels.seed()),
            Key::Points => {
                self.unknown_field(Cow::Borrowed("points"));
                map.next_value_seed(AnyJson)
            }
            Key::Other(name) => {
                self.unknown_field(name);
                map.next_value_seed(AnyJson)
            }
        }
    }

    fn unknown_field(&mut self, name: Cow<'a, str>) {
        if self.unknown.as_ref().is_none_or(|u| name < *u) {
            self.unknown = Some(name);
        }
    }

    /// Checks the point, in the order its errors are reported (fields, chart, value, ts,
    /// labels), and adds it to its series. A series seen before has a good chart name and good
    /// labels, so they are checked and built once per series.
    fn add_to(&mut self, groups: &mut Groups, cfg: &Config, now: f64) -> Result<(), ApiError> {
        if let Some(name) = &self.unknown {
            return Err(ApiError::new(
                Code::UnknownField,
                format!(
                    "unknown field {name:?}; a point has chart, value (or count, sum, min, max and last), ts (or timestamp) and labels"
                ),
            ));
        }
        if self.ts.is_some() && self.timestamp.is_some() {
            return Err(ApiError::new(
                Code::DuplicateField,
                "ts and timestamp are the same field (timestamp is another name for ts); send one of them",
            ));
        }
        // Read now, while the fields may still be borrowed, and reported in their turn below.
        let reading = self.reading(cfg.max_value);
        let ts = self.time(cfg, now);
        let chart = match &self.chart {
            Some(Field::Text(s)) => s.as_ref(),
            Some(_) => return Err(ApiError::new(Code::InvalidChart, "chart must be a string")),
            None => {
                return Err(ApiError::new(
                    Code::MissingField,
                    "chart is missing; every point names its chart",
                ))
            }
        };
        // A labels error comes last, but labels that read well find the series now.
        let labels = self.labels.sorted();
        let (hash, seen) = match &labels {
            Ok(labels) => {
                let hash = series_hash(chart, *labels);
                (hash, groups.find(hash, chart, *labels)?)
            }
            Err(_) => (0, None),
        };
        let series = match seen {
            Some(slot) => Series::Seen(slot),
            None => Series::New(ChartName::parse(chart)?),
        };
        let reading = reading?;
        let ts = ts?;
        let slot = match series {
            Series::Seen(slot) => slot,
            Series::New(chart) => groups.insert(hash, chart, Labels::from_sorted(labels?)?),
        };
        let series = &mut groups.series[slot];
        match reading {
            Reading::Value(value) => series.points.push((ts, value)),
            Reading::Aggregate(aggregate) => series.aggregates.push((ts, aggregate)),
        }
        Ok(())
    }

    /// What the point carries: one value, or the fields of a pre-aggregated point (any of count,
    /// sum, min, max and last makes it one), never both.
    fn reading(&self, max_value: f64) -> Result<Reading, ApiError> {
        let aggregate = self.count.is_some()
            || self.sum.is_some()
            || self.min.is_some()
            || self.max.is_some()
            || self.last.is_some();
        if !aggregate {
            return match &self.value {
                Some(field) => number(field, "value", Code::InvalidValue)
                    .and_then(|n| Value::parse(n, max_value))
                    .map(Reading::Value),
                None => Err(ApiError::new(
                    Code::MissingField,
                    "value is missing; every point carries a number",
                )),
            };
        }
        if self.value.is_some() {
            return Err(ApiError::new(
                Code::ConflictingFields,
                "a point carries either value or count, sum, min, max and last (a pre-aggregated point), not both",
            ));
        }
        let required = |field: &Option<Field>, name: &str, code: Code| {
            match field {
            Some(field) => number(field, name, code),
            None => Err(ApiError::new(
                Code::MissingField,
                format!("{name} is missing; a pre-aggregated point carries count, sum, min and max (and may carry last)"),
            )),
        }
        };
        let count = required(&self.count, "count", Code::InvalidCount)?;
        let sum = required(&self.sum, "sum", Code::InvalidValue)?;
        let min = required(&self.min, "min", Code::InvalidValue)?;
        let max = required(&self.max, "max", Code::InvalidValue)?;
        let last = match &self.last {
            Some(field) => Some(number(field, "last", Code::InvalidValue)?),
            None => None,
        };
        Aggregate::parse(count, sum, min, max, last, max_value).map(Reading::Aggregate)
    }

    /// The point's time: `ts` or `timestamp`, or now when it has neither.
    fn time(&self, cfg: &Config, now: f64) -> Result<Timestamp, ApiError> {
        let (name, ts) = match (&self.ts, &self.timestamp) {
            (Some(ts), _) => ("ts", Some(ts)),
            (None, ts) => ("timestamp", ts.as_ref()),
        };
        match ts {
            None | Some(Field::Null) => Ok(Timestamp::from_secs(now)),
            Some(Field::Number(n)) => Timestamp::parse(*n, now, cfg.retention_seconds()),
            Some(_) => Err(ApiError::new(
                Code::InvalidTimestamp,
                format!("{name} must be a number of unix seconds"),
            )),
        }
    }
}

/// What a point carries.
enum Reading {
    Value(Value),
    Aggregate(Aggregate),
}

/// A numeric field of a point; anything but a JSON number is refused with `code`, naming the
/// field.
fn number(field: &Field, name: &str, code: Code) -> Result<f64, ApiError> {
    match field {
        Field::Number(n) => Ok(*n),
        Field::Text(s) => Err(ApiError::new(
            code,
            format!("{name} must be a JSON number, not the string {s:?}: drop the quotes"),
        )),
        Field::Null => Err(ApiError::new(
            code,
            format!("{name} is null; send a number"),
        )),
        Field::Other => Err(ApiError::new(
            code,
            format!("{name} must be a finite number"),
        )),
    }
}

/// The series a point belongs to: one seen before, or a new one with its chart name checked.
enum Series {
    Seen(usize),
    New(ChartName),
}

/// The series of a batch, found by chart name and labels.
#[derive(Default)]
struct Groups {
    series: Vec<SeriesPoints>,
    /// Series by the hash of their chart name and labels; a collision goes on in `next`.
    by_hash: HashMap<u64, usize, BuildHasherDefault<SeriesHash>>,
    /// For every series, the next one with the same hash (`usize::MAX`: none).
    next: Vec<usize>,
}

impl Groups {
    /// The series with this chart and labels, if the batch has one. Series that share a hash are
    /// compared in full; a chain longer than a 64-bit hash ever makes by chance means names chosen
    /// to collide, and the batch is refused rather than compared pair by pair.
    fn find(
        &self,
        hash: u64,
        chart: &str,
        labels: SortedLabels,
    ) -> Result<Option<usize>, ApiError> {
        let Some(&first) = self.by_hash.get(&hash) else {
            return Ok(None);
        };
        let mut at = first;
        let mut steps = 0;
        while at != usize::MAX {
            let s = &self.series[at];
            if s.chart.as_str() == chart && s.labels.is(labels) {
                return Ok(Some(at));
            }
            steps += 1;
            if steps > MAX_COLLISIONS {
                return Err(ApiError::new(
                    Code::InvalidBody,
                    "too many series in this batch look alike to its index; send fewer series per request",
                ));
            }
            at = self.next[at];
        }
        Ok(None)
    }

    fn insert(&mut self, hash: u64, chart: ChartName, labels: Labels) -> usize {
        let slot = self.series.len();
        let first = self.by_hash.insert(hash, slot);
        self.next.push(first.unwrap_or(usize::MAX));
        self.series.push(SeriesPoints {
            chart,
            labels,
            points: Vec::new(),
            aggregates: Vec::new(),
        });
        slot
    }
}

/// Series of one batch that may share a hash before it is refused (see `Groups::find`).
const MAX_COLLISIONS: usize = 32;

/// The hash of a series: its chart name and its labels' names and values, each closed by a byte
/// UTF-8 never holds, so that no two different series spell the same bytes.
fn series_hash(chart: &str, labels: SortedLabels) -> u64 {
    let mut h = SeriesHash::default();
    h.write(chart.as_bytes());
    h.write(&[0xff]);
    for (k, v) in labels.iter() {
        h.write(k.as_bytes());
        h.write(&[0xfe]);
        h.write(v.as_bytes());
        h.write(&[0xff]);
    }
    h.finish()
}

/// A fast hash, eight bytes at a time (std's HashMap hashes to resist chosen keys, at several
/// times the cost). Names chosen to collide would cost time, and only that batch's: a collision is
/// compared in full, and a batch holds at most MAX_BATCH points.
#[derive(Default)]
pub(crate) struct SeriesHash(u64);

impl SeriesHash {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Hasher for SeriesHash {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.add(u64::from_le_bytes(word));
        }
        // The last bytes and how many they are, so that "ab" then "c" differs from "a" then "bc".
        let tail = words.remainder();
        self.add(
            tail.iter()
                .fold(tail.len() as u64, |t, &b| t << 8 | u64::from(b)),
        );
    }

    fn write_u64(&mut self, n: u64) {
        // The key of `Groups::by_hash` is a hash already.
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        let h = self.0 ^ (self.0 >> 29);
        h.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 32)
    }
}

/// The name of a field of a point (or of a body object), read straight from the text.
enum Key<'a> {
    Chart,
    Value,
    Ts,
    Timestamp,
    Count,
    Sum,
    Min,
    Max,
    Last,
    Labels,
    Points,
    Other(Cow<'a, str>),
}

impl Key<'_> {
    fn known(name: &str) -> Option<Self> {
        // Byte by byte: `==` on strings calls memcmp, which costs more than these comparisons.
        Some(match name.as_bytes() {
            [b'c', b'h', b'a', b'r', b't'] => Key::Chart,
            [b'v', b'a', b'l', b'u', b'e'] => Key::Value,
            [b't', b's'] => Key::Ts,
            [b't', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p'] => Key::Timestamp,
            [b'l', b'a', b'b', b'e', b'l', b's'] => Key::Labels,
            [b'c', b'o', b'u', b'n', b't'] => Key::Count,
            [b's', b'u', b'm'] => Key::Sum,
            [b'm', b'i', b'n'] => Key::Min,
            [b'm', b'a', b'x'] => Key::Max,
            [b'l', b'a', b's', b't'] => Key::Last,
            [b'p', b'o', b'i', b'n', b't', b's'] => Key::Points,
            _ => return None,
        })
    }
}

struct KeySeed;

impl<'a> DeserializeSeed<'a> for KeySeed {
    type Value = Key<'a>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Key<'a>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'a> Visitor<'a> for KeySeed {
    type Value = Key<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E>(self, v: &'a str) -> Result<Key<'a>, E> {
        Ok(Key::known(v).unwrap_or(Key::Other(Cow::Borrowed(v))))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
        Ok(Key::known(v).unwrap_or_else(|| Key::Other(Cow::Owned(v.to_string()))))
    }
}

/// Reads a whole body: an array of points, or an object that is a point or `{"points":[...]}`.
struct BodySeed<'s, 'c, 'a>(&'s mut Collector<'c, 'a>);

impl<'a> DeserializeSeed<'a> for BodySeed<'_, '_, 'a> {
    type Value = Shape<'a>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Shape<'a>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for BodySeed<'_, '_, 'a> {
    type Value = Shape<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a point, an array of points or {\"points\":[...]}")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, seq: A) -> Result<Shape<'a>, A::Error> {
        self.0.read_batch(seq)?;
        Ok(Shape::Batch)
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Shape<'a>, A::Error> {
        let mut point = Box::<RawPoint>::default();
        let (mut points, mut chart, mut others) = (None, false, false);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if let Key::Points = key {
                // In a point, `points` is an unknown field.
                point.unknown_field(Cow::Borrowed("points"));
                self.0.reset();
                points = Some(map.next_value_seed(PointsSeed(&mut *self.0))?);
            } else {
                chart |= matches!(key, Key::Chart);
                others = true;
                point.read(key, &mut map)?;
            }
        }
        Ok(Shape::Object {
            point,
            points,
            chart,
            others,
        })
    }

    fn visit_unit<E>(self) -> Result<Shape<'a>, E> {
        Ok(Shape::Other)
    }

    any_scalar!(self => Shape::Other);
}

/// Reads the value of a body's `points` field into the collector: whether it was an array.
struct PointsSeed<'s, 'c, 'a>(&'s mut Collector<'c, 'a>);

impl<'a> DeserializeSeed<'a> for PointsSeed<'_, '_, 'a> {
    type Value = bool;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for PointsSeed<'_, '_, 'a> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of points")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, seq: A) -> Result<bool, A::Error> {
        self.0.read_batch(seq)?;
        Ok(true)
    }

    fn visit_map<A: MapAccess<'a>>(self, map: A) -> Result<bool, A::Error> {
        AnyJson.visit_map(map)?;
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }

    any_scalar!(self => false);
}

/// Reads one element of a batch into the collector.
struct PointSeed<'s, 'c, 'a>(&'s mut Collector<'c, 'a>);

impl<'a> DeserializeSeed<'a> for PointSeed<'_, '_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for PointSeed<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a point")
    }

    fn visit_map<A: MapAccess<'a>>(self, map: A) -> Result<(), A::Error> {
        self.0.read_point(map)
    }

    fn visit_seq<A: SeqAccess<'a>>(self, seq: A) -> Result<(), A::Error> {
        AnyJson.visit_seq(seq)?;
        self.0.add_not_a_point();
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.add_not_a_point();
        Ok(())
    }

    any_scalar!(self => self.0.add_not_a_point());
}

/// Reads the value of `chart`, `value`, `ts` or `timestamp` into its place in the point,
/// replacing a value read before (JSON readers keep the last of repeated fields).
struct FieldSeed<'s, 'a>(&'s mut Option<Field<'a>>);

impl<'a> DeserializeSeed<'a> for FieldSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> FieldSeed<'_, 'a> {
    fn set(self, field: Field<'a>) {
        *self.0 = Some(field);
    }
}

impl<'a> Visitor<'a> for FieldSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field's value")
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.set(Field::Number(v as f64));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.set(Field::Number(v as f64));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.set(Field::Number(v));
        Ok(())
    }

    fn visit_borrowed_str<E>(self, v: &'a str) -> Result<(), E> {
        self.set(Field::Text(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.set(Field::Text(Cow::Owned(v.to_string())));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.set(Field::Null);
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.set(Field::Other);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'a>>(self, seq: A) -> Result<(), A::Error> {
        AnyJson.visit_seq(seq)?;
        self.set(Field::Other);
        Ok(())
    }

    fn visit_map<A: MapAccess<'a>>(self, map: A) -> Result<(), A::Error> {
        AnyJson.visit_map(map)?;
        self.set(Field::Other);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    const NOW: f64 = 1_700_000_000.0;

    fn parse(body: &str) -> Result<Batch, ApiError> {
        Batch::parse(body.as_bytes(), &Config::default(), NOW)
    }

    /// Every bucket of every (chart, labels) in SQL parameters, in order.
    fn buckets_by_series(params: &[String]) -> Vec<(String, String, serde_json::Value)> {
        let mut out = Vec::new();
        for p in params {
            let v: serde_json::Value = serde_json::from_str(p).expect("each parameter is JSON");
            for g in v.as_array().unwrap() {
                for b in g["p"].as_array().unwrap() {
                    out.push((
                        g["c"].as_str().unwrap().to_string(),
                        g["l"].as_str().unwrap().to_string(),
                        b.clone(),
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn a_batch_of_one_point_per_series_needs_no_folding_and_two_in_a_series_do() {
        let one = parse(r#"[{"chart":"a","value":1},{"chart":"b","value":2}]"#).unwrap();
        assert!(one.one_partial_each());
        let two = parse(r#"[{"chart":"a","value":1},{"chart":"a","value":2}]"#).unwrap();
        assert!(!two.one_partial_each());
    }

    #[test]
    fn without_a_cap_the_sql_parameter_is_one_and_the_same_text() {
        let b = parse(
            r#"[{"chart":"a","value":1,"ts":1699999000.5},{"chart":"b","value":2,"labels":{"h":"x\"y"}}]"#,
        )
        .unwrap();
        assert_eq!(b.to_sql_params(usize::MAX), vec![b.to_sql_json()]);
    }

    #[test]
    fn a_batch_larger_than_the_cap_is_split_into_parameters_that_keep_every_bucket() {
        let points: Vec<String> = (0..2000)
            .map(|i| {
                format!(
                    r#"{{"chart":"c{}","value":{},"ts":{},"labels":{{"q":"{}"}}}}"#,
                    i % 7,
                    -1.234_567_890_123_4e-7 * f64::from(i),
                    1_699_990_000 + i,
                    "\\\"".repeat(40)
                )
            })
            .collect();
        let b = parse(&format!("[{}]", points.join(","))).unwrap();
        let whole = b.to_sql_json();
        let cap = 20_000;
        let params = b.to_sql_params(cap);
        assert!(
            params.len() > whole.len() / cap,
            "{} parameters",
            params.len()
        );
        for p in &params {
            assert!(p.len() <= cap, "a parameter of {} bytes", p.len());
        }
        assert_eq!(buckets_by_series(&params), buckets_by_series(&[whole]));
    }

    #[test]
    fn the_largest_body_makes_parameters_under_half_of_what_d1_takes() {
        use crate::domain::round::MAX_PARAM_BYTES;
        // 8,000 points of long values and quote-heavy labels in 1,000 series: near 1 MiB.
        let points: Vec<String> = (0..8_000)
            .map(|i| {
                format!(
                    r#"{{"chart":"s{}","value":-9.87654321012345e-300,"ts":{},"labels":{{"a":"{}"}}}}"#,
                    i % 1000,
                    1_699_990_000.123_456 + f64::from(i),
                    "\\\"".repeat(15)
                )
            })
            .collect();
        let body = format!("[{}]", points.join(","));
        assert!(body.len() <= crate::domain::config::MAX_BODY_BYTES);
        let b = parse(&body).unwrap();
        assert!(
            b.to_sql_json().len() > MAX_PARAM_BYTES,
            "as one parameter it would be too big"
        );
        let params = b.to_sql_params(MAX_PARAM_BYTES);
        assert!(params.len() >= 2);
        assert!(params.iter().all(|p| p.len() <= MAX_PARAM_BYTES));
        assert_eq!(
            buckets_by_series(&params).len(),
            8_000,
            "every point, one bucket a second"
        );
    }

    #[test]
    fn series_that_differ_only_in_label_names_do_not_share_a_hash_chain() {
        // 10,000 series of one chart, each with one label of another name and the same value:
        // before, they all hashed alike and each point walked the whole chain.
        let points: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"chart":"a","value":1,"labels":{{"n{i:05}":"x"}}}}"#))
            .collect();
        let b = parse(&format!("[{}]", points.join(","))).unwrap();
        assert_eq!(b.series.len(), 10_000);
    }

    #[test]
    fn one_point_without_ts_lands_at_now() {
        let b = parse(r#"{"chart":"users","value":42}"#).unwrap();
        assert_eq!(b.len, 1);
        assert_eq!(b.series[0].chart.as_str(), "users");
        assert_eq!(
            b.series[0].points,
            vec![(Timestamp::from_secs(NOW), Value(42.0))]
        );
    }

    #[test]
    fn an_array_and_a_points_object_are_the_same_batch() {
        let a =
            parse(r#"[{"chart":"a","value":1,"ts":1699999000},{"chart":"b","value":2}]"#).unwrap();
        let b = parse(
            r#"{"points":[{"chart":"a","value":1,"ts":1699999000},{"chart":"b","value":2}]}"#,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.series.len(), 2);
    }

    #[test]
    fn points_are_grouped_by_chart_and_labels() {
        let b = parse(
            r#"[{"chart":"a","value":1},{"chart":"a","value":2,"labels":{"h":"x"}},{"chart":"a","value":3}]"#,
        )
        .unwrap();
        assert_eq!(b.series.len(), 2);
        assert_eq!(b.series[0].points.len(), 2);
        assert_eq!(b.series[1].labels.canonical(), r#"{"h":"x"}"#);
    }

    #[test]
    fn a_bad_point_in_a_batch_names_its_index() {
        let e = parse(r#"[{"chart":"a","value":1},{"chart":"a","value":"x"}]"#).unwrap_err();
        assert_eq!(e.code, "invalid_value");
        assert_eq!(e.index, Some(1));
    }

    #[test]
    fn malformed_json_and_an_empty_body_are_invalid_json() {
        assert_eq!(parse("{chart:").unwrap_err().code, "invalid_json");
        let e = parse("").unwrap_err();
        assert_eq!(e.code, "invalid_json");
        assert!(e.message.contains("empty"));
    }

    #[test]
    fn missing_fields_are_named() {
        let e = parse(r#"{"value":1}"#).unwrap_err();
        assert_eq!(e.code, "missing_field");
        assert!(e.message.contains("chart"));
        assert!(parse(r#"{"chart":"a"}"#)
            .unwrap_err()
            .message
            .contains("value"));
    }

    #[test]
    fn a_misspelt_field_is_rejected_rather_than_ignored() {
        let e = parse(r#"{"chart":"a","valu":1}"#).unwrap_err();
        assert_eq!(e.code, "unknown_field");
        assert!(e.message.contains("valu"));
        assert!(e.message.contains("timestamp"), "{}", e.message);
    }

    #[test]
    fn timestamp_is_another_name_for_ts() {
        // The payload the seed service documents.
        let b = parse(r#"{"chart":"users","value":42.0,"timestamp":1699999000}"#).unwrap();
        assert_eq!(
            b.series[0].points,
            vec![(Timestamp::from_secs(1_699_999_000.0), Value(42.0))]
        );
        let e = parse(r#"{"chart":"a","value":1,"timestamp":1700000000000}"#).unwrap_err();
        assert_eq!(e.code, "timestamp_in_milliseconds");
    }

    #[test]
    fn ts_and_timestamp_together_are_a_duplicate_field_naming_both() {
        let e = parse(r#"[{"chart":"a","value":1},{"chart":"a","value":1,"ts":1699999000,"timestamp":1699999000}]"#)
            .unwrap_err();
        assert_eq!(
            (e.status, e.code, e.index),
            (400, Code::DuplicateField, Some(1))
        );
        assert!(e.message.contains("ts") && e.message.contains("timestamp"));
    }

    #[test]
    fn a_timestamp_that_is_not_a_number_is_refused_under_its_own_name() {
        let e = parse(r#"{"chart":"a","value":1,"timestamp":"now"}"#).unwrap_err();
        assert_eq!(e.code, "invalid_timestamp");
        assert!(e.message.starts_with("timestamp "), "{}", e.message);
    }

    #[test]
    fn a_chart_name_that_a_url_cannot_hold_is_refused() {
        for chart in [".", "..", "a/../b", "a/", "/a", "a//b"] {
            let e = parse(&format!(r#"{{"chart":"{chart}","value":1}}"#)).unwrap_err();
            assert_eq!(e.code, "invalid_chart", "{chart}");
        }
    }

    #[test]
    fn the_body_must_be_json_before_anything_in_it_is_judged() {
        let e = parse(r#"[{"chart":"a","valu":1},{"chart":"a","value":1,"x":1e999}]"#).unwrap_err();
        assert_eq!(e.code, "invalid_json");
        let deep = format!(
            r#"[{{"chart":"a","value":1,"x":{}{}}}]"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(parse(&deep).unwrap_err().code, "invalid_json");
        let e = Batch::parse(
            b"{\"chart\":\"a\xff\",\"value\":1}",
            &Config::default(),
            NOW,
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn too_many_points_are_reported_before_a_bad_point() {
        let cfg = Config {
            max_batch: 2,
            ..Config::default()
        };
        let body = r#"[{"chart":"a","value":"x"},{"chart":"a","value":1},{"chart":"a","value":1}]"#;
        let e = Batch::parse(body.as_bytes(), &cfg, NOW).unwrap_err();
        assert_eq!(e.code, Code::BatchTooLarge);
    }

    #[test]
    fn the_first_bad_point_is_the_one_named() {
        let e = parse(r#"[{"chart":"a","value":1},[1],{"chart":"a"},{"chart":"a","value":"x"}]"#)
            .unwrap_err();
        assert_eq!((e.code, e.index), (Code::InvalidPoint, Some(1)));
    }

    #[test]
    fn of_repeated_fields_the_last_counts_as_in_any_json_reader() {
        let b = parse(r#"{"chart":"a","value":"x","value":2}"#).unwrap();
        assert_eq!(b.series[0].points[0].1, Value(2.0));
        let e = parse(r#"{"points":[{"chart":"a","value":1}],"points":[]}"#).unwrap_err();
        assert_eq!(e.code, "empty_batch");
    }

    #[test]
    fn a_points_body_holds_an_array_and_nothing_else() {
        assert_eq!(parse(r#"{"points":5}"#).unwrap_err().code, "invalid_body");
        let e = parse(r#"{"points":[],"x":1}"#).unwrap_err();
        assert_eq!(e.code, "unknown_field");
        let e = parse(r#"{"chart":"a","value":1,"points":[]}"#).unwrap_err();
        assert_eq!(e.code, "unknown_field");
        assert!(e.message.contains("points"));
    }

    #[test]
    fn escaped_and_plain_spellings_of_a_name_are_one_series() {
        let b = parse(r#"[{"chart":"us\u0065rs","value":1,"labels":{"\u0068":"x"}},{"chart":"users","value":2,"labels":{"h":"x"}}]"#)
            .unwrap();
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.series[0].points.len(), 2);
    }

    #[test]
    fn labels_in_another_order_or_spelling_are_the_same_series() {
        let b = parse(
            r#"[{"chart":"a","value":1,"labels":{"h":"x","shard":3}},
                {"chart":"a","value":2,"labels":{"shard":"3","h":"x"}},
                {"chart":"a","value":3,"labels":{"h":"y","h":"x","shard":"3"}}]"#,
        )
        .unwrap();
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.series[0].labels.canonical(), r#"{"h":"x","shard":"3"}"#);
    }

    #[test]
    fn labels_that_differ_only_in_their_names_are_other_series() {
        let b = parse(
            r#"[{"chart":"a","value":1,"labels":{"h":"x"}},{"chart":"a","value":2,"labels":{"g":"x"}},
                {"chart":"a","value":3,"labels":{"h":"x"}},{"chart":"a","value":4,"labels":{"g":"x"}}]"#,
        )
        .unwrap();
        let values: Vec<Vec<f64>> = b
            .series
            .iter()
            .map(|s| s.points.iter().map(|p| p.1.get()).collect())
            .collect();
        assert_eq!(values, [[1.0, 3.0], [2.0, 4.0]]);
    }

    #[test]
    fn a_bad_labels_field_in_a_batch_names_its_point() {
        let e = parse(r#"[{"chart":"a","value":1},{"chart":"a","value":1,"labels":{"h":null}}]"#)
            .unwrap_err();
        assert_eq!((e.code, e.index), (Code::InvalidLabels, Some(1)));
    }

    #[test]
    fn many_series_keep_every_point_in_the_order_it_came() {
        let body: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    r#"{{"chart":"c{}","value":{i},"labels":{{"h":"{}"}}}}"#,
                    i % 37,
                    i % 3
                )
            })
            .collect();
        let b = parse(&format!("[{}]", body.join(","))).unwrap();
        assert_eq!(b.series.len(), 111);
        assert_eq!(b.series.iter().map(|s| s.points.len()).sum::<usize>(), 1000);
        for s in &b.series {
            let values: Vec<f64> = s.points.iter().map(|p| p.1.get()).collect();
            assert!(values.windows(2).all(|w| w[0] < w[1]));
            let first = values[0] as usize;
            assert_eq!(s.chart.as_str(), format!("c{}", first % 37));
            assert_eq!(s.labels.canonical(), format!(r#"{{"h":"{}"}}"#, first % 3));
        }
    }

    #[test]
    fn values_beyond_max_value_are_out_of_range() {
        assert_eq!(
            parse(r#"{"chart":"a","value":1e10}"#).unwrap_err().code,
            "value_out_of_range"
        );
        assert!(parse(r#"{"chart":"a","value":-1e9}"#).is_ok());
    }

    #[test]
    fn a_quoted_number_is_rejected_with_a_hint() {
        let e = parse(r#"{"chart":"a","value":"42"}"#).unwrap_err();
        assert!(e.message.contains("quotes"));
    }

    #[test]
    fn booleans_and_null_are_not_values() {
        assert_eq!(
            parse(r#"{"chart":"a","value":true}"#).unwrap_err().code,
            "invalid_value"
        );
        assert_eq!(
            parse(r#"{"chart":"a","value":null}"#).unwrap_err().code,
            "invalid_value"
        );
    }

    #[test]
    fn a_numeric_overflow_in_json_is_not_accepted() {
        assert!(parse(r#"{"chart":"a","value":1e400}"#).is_err());
    }

    #[test]
    fn timestamps_in_milliseconds_are_refused() {
        let e = parse(r#"{"chart":"a","value":1,"ts":1700000000000}"#).unwrap_err();
        assert_eq!(e.code, "timestamp_in_milliseconds");
    }

    #[test]
    fn a_string_timestamp_is_refused() {
        let e = parse(r#"{"chart":"a","value":1,"ts":"yesterday"}"#).unwrap_err();
        assert_eq!(e.code, "invalid_timestamp");
    }

    #[test]
    fn an_empty_batch_is_an_error() {
        assert_eq!(parse("[]").unwrap_err().code, "empty_batch");
        assert_eq!(parse(r#"{"points":[]}"#).unwrap_err().code, "empty_batch");
    }

    #[test]
    fn more_points_than_max_batch_is_413() {
        let cfg = Config {
            max_batch: 3,
            ..Config::default()
        };
        let body = json!([{"chart":"a","value":1},{"chart":"a","value":1},{"chart":"a","value":1},{"chart":"a","value":1}]);
        let e = Batch::parse(body.to_string().as_bytes(), &cfg, NOW).unwrap_err();
        assert_eq!((e.status, e.code), (413, Code::BatchTooLarge));
    }

    #[test]
    fn a_body_over_one_mebibyte_is_413() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let e = Batch::parse(&body, &Config::default(), NOW).unwrap_err();
        assert_eq!((e.status, e.code), (413, Code::PayloadTooLarge));
    }

    #[test]
    fn scalars_are_not_bodies() {
        assert_eq!(parse("42").unwrap_err().code, "invalid_body");
        assert_eq!(parse("[42]").unwrap_err().code, "invalid_point");
    }

    #[test]
    fn combined_batches_hold_every_point_once_with_series_merged_in_order() {
        let a = parse(r#"[{"chart":"a","value":1},{"chart":"b","value":2}]"#).unwrap();
        let b = parse(r#"[{"chart":"a","value":3},{"chart":"c","value":4}]"#).unwrap();
        let both = Batch::combine([&a, &b]);
        assert_eq!(both.len, 4);
        let charts: Vec<&str> = both.series.iter().map(|s| s.chart.as_str()).collect();
        assert_eq!(charts, ["a", "b", "c"]);
        let a_values: Vec<f64> = both.series[0].points.iter().map(|p| p.1.get()).collect();
        assert_eq!(a_values, [1.0, 3.0]);
    }

    #[test]
    fn the_sql_parameter_carries_every_series_with_its_points_per_second() {
        let b = parse(
            r#"[{"chart":"a","value":1,"ts":1699999000.5},{"chart":"a","value":2,"ts":1699999001},
                {"chart":"b","value":7,"ts":1699999001}]"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&b.to_sql_json()).unwrap();
        assert_eq!(
            v,
            json!([
                {"c":"a","l":"{}","p":[[1699999000,1,1.0,1.0,1.0,1.0,1699999000.5],[1699999001,1,2.0,2.0,2.0,2.0,1699999001.0]]},
                {"c":"b","l":"{}","p":[[1699999001,1,7.0,7.0,7.0,7.0,1699999001.0]]}
            ])
        );
    }

    /// What `to_sql_json` wrote with serde_json, before it was written by hand.
    fn sql_json_by_serde(b: &Batch) -> String {
        #[derive(serde::Serialize)]
        struct Group<'a> {
            c: &'a str,
            l: String,
            p: Vec<(i64, i64, f64, f64, f64, f64, f64)>,
        }
        let groups: Vec<Group> = b
            .series
            .iter()
            .map(|s| {
                let (mut buckets, mut slots) = (Vec::new(), HashMap::new());
                merge_by_second(s, &mut buckets, &mut slots);
                Group {
                    c: s.chart.as_str(),
                    l: serde_json::to_string(s.labels.as_map()).unwrap(),
                    p: buckets
                        .iter()
                        .map(|b| (b.ts, b.count, b.sum, b.min, b.max, b.last, b.last_ts))
                        .collect(),
                }
            })
            .collect();
        serde_json::to_string(&groups).unwrap()
    }

    #[test]
    fn the_sql_parameter_is_spelled_byte_for_byte_as_serde_json_spells_it() {
        let cfg = Config {
            max_value: 1e300,
            ..Config::default()
        };
        let body = r#"[
            {"chart":"say \"hi\" \\ 注册 ✓","value":-0.0,"ts":1699999000.25,"labels":{"q":"a \"b\" \\ c","z":"é"}},
            {"chart":"say \"hi\" \\ 注册 ✓","value":1e21,"ts":1699999000.75,"labels":{"z":"é","q":"a \"b\" \\ c"}},
            {"chart":"n","value":0.1,"ts":1699999003},{"chart":"n","value":-2.5e-7,"ts":1699999001.5},
            {"chart":"n","value":123456789012345.6,"ts":1699999003.5},{"chart":"n","value":1e300},
            {"chart":"n","value":999999999999999,"ts":1699999001.999},{"chart":"n","value":-42}
        ]"#;
        let b = Batch::parse(body.as_bytes(), &cfg, NOW).unwrap();
        assert_eq!(b.to_sql_json(), sql_json_by_serde(&b));
        let one = parse(r#"{"chart":"users","value":42}"#).unwrap();
        assert_eq!(one.to_sql_json(), sql_json_by_serde(&one));
    }

    #[test]
    fn floats_are_spelled_as_serde_json_spells_them() {
        let mut bits = 0x9e37_79b9_7f4a_7c15_u64;
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            42.0,
            0.5,
            1e14,
            999_999_999_999_999.0,
            1e15,
            1e16,
            1e21,
            1e22,
            1e-5,
            1e-7,
            1_699_999_000.3,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            f64::NAN,
            f64::INFINITY,
        ];
        for _ in 0..100_000 {
            bits ^= bits << 13;
            bits ^= bits >> 7;
            bits ^= bits << 17;
            xs.push(f64::from_bits(bits));
            xs.push((bits % 10_000_000) as f64 / 8.0 - 600_000.0);
        }
        for x in xs {
            let mut ours = String::new();
            push_float(&mut ours, x);
            assert_eq!(
                ours,
                format!(",{}", serde_json::to_string(&x).unwrap()),
                "{x:?}"
            );
        }
    }

    #[test]
    fn points_in_the_same_second_are_merged_before_sql_and_the_later_one_is_last() {
        let b = parse(
            r#"[{"chart":"a","value":5,"ts":1699999000.2},{"chart":"a","value":1,"ts":1699999000.9},
                {"chart":"a","value":9,"ts":1699999000.9},{"chart":"a","value":3,"ts":1699999000.1}]"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&b.to_sql_json()).unwrap();
        assert_eq!(
            v[0]["p"],
            json!([[1699999000, 4, 18.0, 1.0, 9.0, 9.0, 1699999000.9]])
        );
    }

    #[test]
    fn a_pre_aggregated_point_is_kept_apart_from_single_values_in_its_series() {
        let b = parse(
            r#"[{"chart":"page.ms","value":7,"ts":1699999000},
                {"chart":"page.ms","ts":1699999001,"count":120,"sum":5400.5,"min":12.1,"max":410,"last":33}]"#,
        )
        .unwrap();
        assert_eq!((b.len, b.series.len()), (2, 1));
        let s = &b.series[0];
        assert_eq!(s.points.len(), 1);
        let (ts, a) = s.aggregates[0];
        assert_eq!(ts, Timestamp::from_secs(1_699_999_001.0));
        assert_eq!(
            (a.count(), a.sum(), a.min(), a.max(), a.last()),
            (120, 5400.5, 12.1, 410.0, 33.0)
        );
    }

    #[test]
    fn a_pre_aggregated_point_reaches_sql_as_the_values_it_folds_would() {
        let t = 1_699_999_000.0;
        let values = [12.0, 410.0, 33.5, 20.0, 33.0];
        let raw: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    r#"{{"chart":"a","value":{v},"ts":{}}}"#,
                    t + i as f64 / 10.0
                )
            })
            .collect();
        let raw = parse(&format!("[{}]", raw.join(","))).unwrap();
        let folded = parse(&format!(
            r#"{{"chart":"a","ts":{},"count":5,"sum":508.5,"min":12,"max":410,"last":33}}"#,
            t + 0.4
        ))
        .unwrap();
        assert_eq!(folded.to_sql_json(), raw.to_sql_json());
    }

    #[test]
    fn a_pre_aggregated_point_merges_with_single_values_of_its_second() {
        let b = parse(
            r#"[{"chart":"a","value":1,"ts":1699999000.9},
                {"chart":"a","ts":1699999000.5,"count":3,"sum":12,"min":2,"max":6,"last":4}]"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&b.to_sql_json()).unwrap();
        assert_eq!(
            v[0]["p"],
            json!([[1699999000, 4, 13.0, 1.0, 6.0, 1.0, 1699999000.9]])
        );
    }

    #[test]
    fn a_pre_aggregated_point_of_one_value_is_written_as_that_value() {
        let a =
            parse(r#"{"chart":"a","ts":1699999000,"count":1,"sum":5,"min":5,"max":5}"#).unwrap();
        let v = parse(r#"{"chart":"a","ts":1699999000,"value":5}"#).unwrap();
        assert_eq!(a.to_sql_json(), v.to_sql_json());
    }

    #[test]
    fn value_and_count_together_are_conflicting_fields() {
        for body in [
            r#"{"chart":"a","value":1,"count":1,"sum":1,"min":1,"max":1}"#,
            r#"{"chart":"a","value":1,"last":1}"#,
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!((e.status, e.code), (400, Code::ConflictingFields), "{body}");
            assert!(e.message.contains("value") && e.message.contains("count"));
        }
    }

    #[test]
    fn a_pre_aggregated_point_without_sum_names_what_is_missing() {
        let e = parse(r#"{"chart":"a","count":2,"min":1,"max":3}"#).unwrap_err();
        assert_eq!(e.code, Code::MissingField);
        assert!(e.message.starts_with("sum is missing"), "{}", e.message);
        let e = parse(r#"{"chart":"a","last":3}"#).unwrap_err();
        assert!(e.message.starts_with("count is missing"), "{}", e.message);
    }

    #[test]
    fn a_count_in_quotes_is_an_invalid_count_with_a_hint() {
        let e = parse(r#"{"chart":"a","count":"2","sum":4,"min":1,"max":3}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidCount);
        assert!(e.message.contains("quotes"));
        let e = parse(r#"{"chart":"a","count":2.5,"sum":4,"min":1,"max":3}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidCount);
        let e = parse(r#"{"chart":"a","count":2,"sum":null,"min":1,"max":3}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidValue);
        assert!(e.message.starts_with("sum is null"), "{}", e.message);
    }

    #[test]
    fn an_inconsistent_pre_aggregated_point_in_a_batch_names_its_index() {
        let e =
            parse(r#"[{"chart":"a","value":1},{"chart":"a","count":2,"sum":100,"min":1,"max":3}]"#)
                .unwrap_err();
        assert_eq!((e.code, e.index), (Code::InconsistentAggregate, Some(1)));
        let e = parse(r#"{"chart":"a","count":2,"sum":4,"min":1,"max":3e9}"#).unwrap_err();
        assert_eq!(e.code, Code::ValueOutOfRange);
        assert!(e.message.starts_with("max "), "{}", e.message);
    }

    #[test]
    fn a_pre_aggregated_point_takes_labels_and_times_as_a_value_does() {
        let b = parse(
            r#"[{"chart":"a","count":2,"sum":4,"min":1,"max":3,"labels":{"h":"x"}},
                {"chart":"a","value":9,"labels":{"h":"x"}}]"#,
        )
        .unwrap();
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.series[0].labels.canonical(), r#"{"h":"x"}"#);
        assert_eq!(b.series[0].aggregates[0].0, Timestamp::from_secs(NOW));
        let e = parse(r#"{"chart":"a","count":2,"sum":4,"min":1,"max":3,"ts":1700000000000}"#)
            .unwrap_err();
        assert_eq!(e.code, Code::TimestampInMilliseconds);
        let e = parse(r#"{"chart":"a","count":2,"sum":4,"min":1,"max":3,"labels":5}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidLabels);
    }

    #[test]
    fn a_bad_chart_is_reported_before_a_bad_aggregate_and_a_bad_aggregate_before_a_bad_ts() {
        let e = parse(r#"{"chart":"","count":0,"sum":4,"min":1,"max":3,"ts":"x"}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidChart);
        let e = parse(r#"{"chart":"a","count":0,"sum":4,"min":1,"max":3,"ts":"x"}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidCount);
    }

    #[test]
    fn combined_batches_keep_pre_aggregated_points_too() {
        let a = parse(r#"{"chart":"a","count":2,"sum":4,"min":1,"max":3}"#).unwrap();
        let b =
            parse(r#"[{"chart":"a","value":1},{"chart":"a","count":3,"sum":3,"min":1,"max":1}]"#)
                .unwrap();
        let both = Batch::combine([&a, &b]);
        assert_eq!(both.series.len(), 1);
        assert_eq!(both.series[0].aggregates.len(), 2);
        assert_eq!(both.series[0].points.len(), 1);
    }
}
