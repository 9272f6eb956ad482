//! Ingest payloads: one point, an array of points or `{"points":[...]}`, parsed into points grouped
//! by series. A batch with one bad point is rejected whole, so nothing is half-written.

use crate::domain::bucket::{bucket_start, Bucket};
use crate::domain::config::{Config, MAX_BODY_BYTES};
use crate::domain::error::{ApiError, Code};
use crate::domain::names::{ChartName, Labels};
use crate::domain::time::Timestamp;
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::HashMap;

/// A point's value: finite and within ±MAX_VALUE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value(f64);

impl Value {
    pub fn parse(v: &Json, max: f64) -> Result<Self, ApiError> {
        let n = match v {
            Json::Number(n) => n.as_f64(),
            Json::String(s) => {
                return Err(ApiError::new(
                    Code::InvalidValue,
                    format!("value must be a JSON number, not the string {s:?}: drop the quotes"),
                ))
            }
            Json::Null => {
                return Err(ApiError::new(
                    Code::InvalidValue,
                    "value is null; send a number",
                ))
            }
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && n.abs() <= max => Ok(Value(n)),
            Some(n) if n.is_finite() => Err(ApiError::new(
                Code::ValueOutOfRange,
                format!("value {n} is beyond ±{max} (MAX_VALUE)"),
            )),
            _ => Err(ApiError::new(
                Code::InvalidValue,
                "value must be a finite number",
            )),
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// The points of one series in a request, in the order they came.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    pub chart: ChartName,
    pub labels: Labels,
    pub points: Vec<(Timestamp, Value)>,
}

/// A parsed ingest request.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub series: Vec<SeriesPoints>,
    pub len: usize,
}

impl Batch {
    /// `now` is unix seconds, passed in so that tests pin the clock.
    pub fn parse(body: &[u8], cfg: &Config, now: f64) -> Result<Batch, ApiError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(too_large_body());
        }
        let doc: Json = serde_json::from_slice(body).map_err(|e| {
            let message = if body.iter().all(u8::is_ascii_whitespace) {
                r#"the body is empty; send JSON like {"chart":"users","value":42}"#.to_string()
            } else {
                format!(
                    r#"the body is not valid JSON ({e}); send JSON like {{"chart":"users","value":42}}"#
                )
            };
            ApiError::new(Code::InvalidJson, message)
        })?;
        let items: Vec<&Json> = match &doc {
            Json::Array(items) => items.iter().collect(),
            Json::Object(o) if o.contains_key("points") && !o.contains_key("chart") => {
                match o.get("points") {
                    Some(Json::Array(items)) if o.len() == 1 => items.iter().collect(),
                    Some(Json::Array(_)) => {
                        return Err(ApiError::new(
                            Code::UnknownField,
                            r#"a {"points":[...]} body holds nothing else"#,
                        ))
                    }
                    _ => {
                        return Err(ApiError::new(
                            Code::InvalidBody,
                            "points must be an array of points",
                        ))
                    }
                }
            }
            Json::Object(_) => vec![&doc],
            _ => {
                return Err(ApiError::new(
                    Code::InvalidBody,
                    r#"send a point {"chart":"users","value":42}, an array of points, or {"points":[...]}"#,
                ))
            }
        };
        if items.is_empty() {
            return Err(ApiError::new(Code::EmptyBatch, "the batch holds no points"));
        }
        if items.len() > cfg.max_batch as usize {
            return Err(ApiError::new(
                Code::BatchTooLarge,
                format!(
                    "{} points in one request; at most {} are accepted (split the batch)",
                    items.len(),
                    cfg.max_batch
                ),
            ));
        }
        let batched =
            matches!(doc, Json::Array(_)) || items.len() > 1 || doc.get("points").is_some();
        let mut index: HashMap<(ChartName, Labels), usize> = HashMap::new();
        let mut series: Vec<SeriesPoints> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let (chart, labels, ts, value) =
                parse_point(item, cfg, now).map_err(|e| if batched { e.at(i) } else { e })?;
            let key = (chart, labels);
            let slot = match index.get(&key) {
                Some(&slot) => slot,
                None => {
                    series.push(SeriesPoints {
                        chart: key.0.clone(),
                        labels: key.1.clone(),
                        points: Vec::new(),
                    });
                    index.insert(key, series.len() - 1);
                    series.len() - 1
                }
            };
            series[slot].points.push((ts, value));
        }
        Ok(Batch {
            series,
            len: items.len(),
        })
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
                    Some(&i) => series[i].points.extend_from_slice(&s.points),
                    None => {
                        index.insert((&s.chart, &s.labels), series.len());
                        series.push(s.clone());
                    }
                }
            }
        }
        Batch { series, len }
    }

    /// The batch as one JSON parameter for SQL (`json_each`): D1 binds at most 100 parameters per
    /// statement, but one parameter may carry any number of points. Points of a series that share
    /// a second are merged here first: every bucket size is a whole number of seconds, so SQL only
    /// has to fold these partial buckets into the chart's buckets.
    pub fn to_sql_json(&self) -> String {
        #[derive(Serialize)]
        struct Group<'a> {
            c: &'a str,
            l: String,
            p: Vec<(i64, i64, f64, f64, f64, f64, f64)>,
        }
        let groups: Vec<Group> = self
            .series
            .iter()
            .map(|s| Group {
                c: s.chart.as_str(),
                l: s.labels.canonical(),
                p: merge_by_second(&s.points)
                    .iter()
                    .map(|b| (b.ts, b.count, b.sum, b.min, b.max, b.last, b.last_ts))
                    .collect(),
            })
            .collect();
        serde_json::to_string(&groups).unwrap_or_else(|_| "[]".to_string())
    }
}

/// Folds points into one partial bucket per whole second, in the order the seconds first appear.
fn merge_by_second(points: &[(Timestamp, Value)]) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    let mut slot: HashMap<i64, usize> = HashMap::new();
    for (ts, v) in points {
        let b = Bucket {
            ts: bucket_start(ts.secs(), 1),
            count: 1,
            sum: v.get(),
            min: v.get(),
            max: v.get(),
            last: v.get(),
            last_ts: ts.secs(),
        };
        match slot.get(&b.ts) {
            Some(&i) => out[i].merge(&b),
            None => {
                slot.insert(b.ts, out.len());
                out.push(b);
            }
        }
    }
    out
}

pub fn too_large_body() -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the body is larger than {MAX_BODY_BYTES} bytes; split it into smaller batches"),
    )
}

fn parse_point(
    item: &Json,
    cfg: &Config,
    now: f64,
) -> Result<(ChartName, Labels, Timestamp, Value), ApiError> {
    let obj = item.as_object().ok_or_else(|| {
        ApiError::new(
            Code::InvalidPoint,
            r#"a point must be an object like {"chart":"users","value":42}"#,
        )
    })?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "chart" | "value" | "ts" | "labels"))
    {
        return Err(ApiError::new(
            Code::UnknownField,
            format!("unknown field {k:?}; a point has chart, value, ts and labels"),
        ));
    }
    let chart = match obj.get("chart") {
        Some(Json::String(s)) => ChartName::parse(s)?,
        Some(_) => return Err(ApiError::new(Code::InvalidChart, "chart must be a string")),
        None => {
            return Err(ApiError::new(
                Code::MissingField,
                "chart is missing; every point names its chart",
            ))
        }
    };
    let value = match obj.get("value") {
        Some(v) => Value::parse(v, cfg.max_value)?,
        None => {
            return Err(ApiError::new(
                Code::MissingField,
                "value is missing; every point carries a number",
            ))
        }
    };
    let ts = match obj.get("ts") {
        None | Some(Json::Null) => Timestamp::from_secs(now),
        Some(Json::Number(n)) => {
            Timestamp::parse(n.as_f64().unwrap_or(f64::NAN), now, cfg.retention_seconds())?
        }
        Some(_) => {
            return Err(ApiError::new(
                Code::InvalidTimestamp,
                "ts must be a number of unix seconds",
            ))
        }
    };
    let labels = match obj.get("labels") {
        None | Some(Json::Null) => Labels::none(),
        Some(v) => Labels::from_json(v)?,
    };
    Ok((chart, labels, ts, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: f64 = 1_700_000_000.0;

    fn parse(body: &str) -> Result<Batch, ApiError> {
        Batch::parse(body.as_bytes(), &Config::default(), NOW)
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
}
