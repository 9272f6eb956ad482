//! A chart as the API addresses it: which of its series a read means, and the settings a caller may
//! change (bucket size, public), parsed from a request body.

use crate::domain::error::{strict_body_error, ApiError, Code};
use crate::domain::names::{ChartName, Labels};
use serde::Deserialize;

/// A change to a chart's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingsChange {
    pub bucket_seconds: Option<u32>,
    pub public: Option<bool>,
}

impl SettingsChange {
    pub fn parse(body: &[u8]) -> Result<SettingsChange, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            bucket_seconds: Option<serde_json::Value>,
            public: Option<serde_json::Value>,
        }
        // Both fields are any JSON value, so a type error means the body is not an object.
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            strict_body_error(
                &e,
                |field| format!("unknown setting {field:?}; a chart has bucket_seconds and public"),
                None,
            )
        })?;
        let bucket_seconds = raw
            .bucket_seconds
            .map(|n| {
                n.as_u64()
                    .filter(|n| (1..=86_400).contains(n))
                    .map(|n| n as u32)
                    .ok_or_else(bucket_error)
            })
            .transpose()?;
        let public = match raw.public {
            None => None,
            Some(serde_json::Value::Bool(b)) => Some(b),
            Some(_) => {
                return Err(ApiError::new(
                    Code::InvalidPublic,
                    "public must be true or false",
                ))
            }
        };
        Ok(SettingsChange {
            bucket_seconds,
            public,
        })
    }
}

/// What changing a chart's bucket size to `new` means, given the size its stored buckets have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketChange {
    /// No stored bucket has another size: only the setting changes.
    SettingOnly,
    /// Stored buckets are merged into the coarser size, in one transaction.
    Merge,
}

pub fn bucket_change(stored: Option<u32>, new: u32) -> Result<BucketChange, ApiError> {
    match stored {
        None => Ok(BucketChange::SettingOnly),
        Some(old) if old == new => Ok(BucketChange::SettingOnly),
        Some(old) if new.is_multiple_of(old) => Ok(BucketChange::Merge),
        Some(old) => Err(ApiError::new(
            Code::BucketChangeNotPossible,
            format!(
                "this chart holds {old} s buckets; it can move to a multiple of {old} s (its buckets are merged), or to any size once deleted"
            ),
        )),
    }
}

fn bucket_error() -> ApiError {
    ApiError::new(
        Code::InvalidBucketSeconds,
        "bucket_seconds must be a whole number of seconds from 1 to 86400",
    )
}

/// How many label sets a read looks at when it has to choose; a chart may hold up to
/// MAX_SERIES_PER_CHART of them, and an error listing them all would be useless.
pub const SERIES_SHOWN: usize = 20;

/// The series a read means: the one with the asked labels, else the label-less one, else the only
/// one. `series` are the chart's series as read for this choice: those with the asked (or empty)
/// labels and the first `SERIES_SHOWN + 1` by labels, in any order and possibly twice.
pub fn pick_series<'a, T>(
    chart: &ChartName,
    series: &'a [T],
    labels_of: impl Fn(&T) -> &str,
    wanted: Option<&Labels>,
) -> Result<&'a T, ApiError> {
    let wanted_text = wanted.map_or_else(|| "{}".to_string(), Labels::canonical);
    if let Some(s) = series.iter().find(|s| labels_of(s) == wanted_text) {
        return Ok(s);
    }
    if series.is_empty() {
        return Err(chart_not_found(chart));
    }
    if wanted.is_some() {
        return Err(ApiError::new(
            Code::SeriesNotFound,
            "this chart has no series with those labels",
        ));
    }
    let mut sets: Vec<&str> = series.iter().map(&labels_of).collect();
    sets.sort_unstable();
    sets.dedup();
    if let [only] = sets[..] {
        return series
            .iter()
            .find(|s| labels_of(s) == only)
            .ok_or_else(|| chart_not_found(chart));
    }
    let more = if sets.len() > SERIES_SHOWN {
        sets.truncate(SERIES_SHOWN);
        " and more"
    } else {
        ""
    };
    Err(ApiError::new(
        Code::LabelsRequired,
        format!(
            "this chart has several series; choose one with labels=..., one of {}{more}",
            sets.join(" ")
        ),
    ))
}

/// Refuses a request that alone would give one chart more than `limit` label sets; `charts` names
/// the chart of each distinct series in the request. (Series already stored are counted by D1.)
pub fn check_series_per_chart<'a>(
    charts: impl IntoIterator<Item = &'a ChartName>,
    limit: u32,
) -> Result<(), ApiError> {
    let mut counts: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    for c in charts {
        let n = counts.entry(c.as_str()).or_insert(0);
        *n += 1;
        if *n > limit {
            return Err(too_many_series(Some(c.as_str()), limit));
        }
    }
    Ok(())
}

/// A chart would hold more label sets than MAX_SERIES_PER_CHART allows.
pub fn too_many_series(chart: Option<&str>, limit: u32) -> ApiError {
    let which = chart.map_or_else(
        || "a chart in this request".to_string(),
        |c| format!("chart {c:?}"),
    );
    ApiError::new(
        Code::TooManySeries,
        format!(
            "{which} would hold more than {limit} label sets (MAX_SERIES_PER_CHART); nothing was stored. Put values that vary a lot (ids, timestamps) in the chart name or drop them from the labels, or delete the chart's old series"
        ),
    )
}

pub fn chart_not_found(chart: &ChartName) -> ApiError {
    ApiError::new(
        Code::ChartNotFound,
        format!("no chart named {:?}", chart.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> ChartName {
        ChartName::parse("api.latency").unwrap()
    }

    fn pick<'a>(series: &'a [&'a str], wanted: Option<&str>) -> Result<&'a str, ApiError> {
        let wanted = wanted.map(|w| Labels::from_query(w).unwrap());
        pick_series(&chart(), series, |s| s, wanted.as_ref()).copied()
    }

    #[test]
    fn the_asked_labels_win_then_the_label_less_series_then_the_only_one() {
        let both = [r#"{"host":"a"}"#, "{}"];
        assert_eq!(pick(&both, Some("host:a")).unwrap(), r#"{"host":"a"}"#);
        assert_eq!(pick(&both, None).unwrap(), "{}");
        assert_eq!(pick(&[r#"{"host":"a"}"#], None).unwrap(), r#"{"host":"a"}"#);
    }

    #[test]
    fn a_chart_with_several_labelled_series_asks_for_labels_and_lists_a_few() {
        let many: Vec<String> = (0..30)
            .map(|i| format!(r#"{{"host":"h{i:02}"}}"#))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = pick(&refs, None).unwrap_err();
        assert_eq!(e.code, "labels_required");
        assert!(e.message.contains("h00") && e.message.ends_with("and more"));
        assert!(!e.message.contains("h25"));
    }

    #[test]
    fn no_series_is_chart_not_found_and_unknown_labels_are_series_not_found() {
        assert_eq!(pick(&[], None).unwrap_err().code, "chart_not_found");
        assert_eq!(
            pick(&["{}"], Some("host:z")).unwrap_err().code,
            "series_not_found"
        );
    }

    #[test]
    fn a_series_read_twice_is_still_the_only_one() {
        let twice = [r#"{"host":"a"}"#, r#"{"host":"a"}"#];
        assert_eq!(pick(&twice, None).unwrap(), r#"{"host":"a"}"#);
    }

    #[test]
    fn one_request_may_not_give_a_chart_more_label_sets_than_the_limit() {
        let a = ChartName::parse("a").unwrap();
        let b = ChartName::parse("b").unwrap();
        assert!(check_series_per_chart([&a, &a, &b], 2).is_ok());
        let e = check_series_per_chart([&a, &b, &a, &a], 2).unwrap_err();
        assert_eq!((e.status, e.code), (422, Code::TooManySeries));
        assert!(e.message.contains("\"a\"") && e.message.contains("MAX_SERIES_PER_CHART"));
    }

    #[test]
    fn a_chart_with_data_moves_only_to_a_multiple_of_its_bucket_size() {
        assert_eq!(bucket_change(None, 90).unwrap(), BucketChange::SettingOnly);
        assert_eq!(
            bucket_change(Some(60), 60).unwrap(),
            BucketChange::SettingOnly
        );
        assert_eq!(bucket_change(Some(60), 3600).unwrap(), BucketChange::Merge);
        let e = bucket_change(Some(60), 90).unwrap_err();
        assert_eq!((e.status, e.code), (409, Code::BucketChangeNotPossible));
        assert!(
            bucket_change(Some(3600), 60).is_err(),
            "finer buckets cannot be unmerged"
        );
    }

    #[test]
    fn settings_are_parsed_strictly() {
        let s = SettingsChange::parse(br#"{"bucket_seconds":300,"public":true}"#).unwrap();
        assert_eq!((s.bucket_seconds, s.public), (Some(300), Some(true)));
        assert_eq!(SettingsChange::parse(b"{}").unwrap().public, None);
        let code = |b: &[u8]| SettingsChange::parse(b).unwrap_err().code;
        assert_eq!(code(br#"{"bucket_seconds":0}"#), "invalid_bucket_seconds");
        assert_eq!(code(br#"{"bucket_seconds":1.5}"#), "invalid_bucket_seconds");
        assert_eq!(
            code(br#"{"bucket_seconds":"60"}"#),
            "invalid_bucket_seconds"
        );
        assert_eq!(code(br#"{"public":"yes"}"#), "invalid_public");
        assert_eq!(code(br#"{"colour":"red"}"#), "unknown_field");
        assert_eq!(code(b"[]"), "invalid_json");
        assert_eq!(code(b""), "invalid_json");
    }
}
