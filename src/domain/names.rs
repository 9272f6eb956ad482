//! Chart names and label sets: what identifies a series, parsed once at the edge.

use crate::domain::error::{ApiError, Code};
use std::collections::BTreeMap;

pub const MAX_CHART_LEN: usize = 128;
pub const MAX_LABELS: usize = 10;
pub const MAX_LABEL_NAME_LEN: usize = 64;
pub const MAX_LABEL_VALUE_LEN: usize = 128;

/// A chart name: 1 to 128 characters, any script, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChartName(String);

impl ChartName {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        if raw.trim().is_empty() {
            return Err(ApiError::new(
                Code::InvalidChart,
                "chart name must not be empty",
            ));
        }
        if raw.chars().count() > MAX_CHART_LEN {
            return Err(ApiError::new(
                Code::InvalidChart,
                format!("chart name is longer than {MAX_CHART_LEN} characters"),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(ApiError::new(
                Code::InvalidChart,
                "chart name must not contain control characters (newlines, tabs, ...)",
            ));
        }
        Ok(ChartName(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `.`, which the dashboard groups by and keys may be limited to.
    pub fn starts_with(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix)
    }
}

impl std::fmt::Display for ChartName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of labels; the same chart with other labels is another series. Names follow Prometheus
/// rules so that series can later be exported as metrics unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    pub fn none() -> Self {
        Labels(BTreeMap::new())
    }

    pub fn from_json(v: &serde_json::Value) -> Result<Self, ApiError> {
        let obj = v.as_object().ok_or_else(|| {
            ApiError::new(
                Code::InvalidLabels,
                r#"labels must be an object of strings, like {"host":"prod1"}"#,
            )
        })?;
        let mut map = BTreeMap::new();
        for (k, v) in obj {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ApiError::new(
                        Code::InvalidLabels,
                        format!("label '{k}' must be a string"),
                    ))
                }
            };
            map.insert(k.clone(), value);
        }
        Self::from_map(map)
    }

    /// Reads the `labels` query parameter: a JSON object, or `name:value` pairs split by commas.
    pub fn from_query(raw: &str) -> Result<Self, ApiError> {
        let raw = raw.trim();
        if raw.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(raw)
                .map_err(|_| ApiError::new(Code::InvalidLabels, "labels is not valid JSON"))?;
            return Self::from_json(&v);
        }
        let mut map = BTreeMap::new();
        for pair in raw.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair.split_once([':', '=']).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidLabels,
                    "labels must look like host:prod1,region:eu or a JSON object",
                )
            })?;
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
        Self::from_map(map)
    }

    fn from_map(map: BTreeMap<String, String>) -> Result<Self, ApiError> {
        if map.len() > MAX_LABELS {
            return Err(ApiError::new(
                Code::InvalidLabels,
                format!("at most {MAX_LABELS} labels per point"),
            ));
        }
        for (k, v) in &map {
            if !is_label_name(k) {
                return Err(ApiError::new(Code::InvalidLabels,
                    format!(
                        "label name '{k}' must start with a letter or '_' and hold only letters, digits and '_' (at most {MAX_LABEL_NAME_LEN})"
                    ),
                ));
            }
            if v.chars().count() > MAX_LABEL_VALUE_LEN || v.chars().any(char::is_control) {
                return Err(ApiError::new(Code::InvalidLabels,
                    format!("label '{k}' must be at most {MAX_LABEL_VALUE_LEN} characters without control characters"),
                ));
            }
        }
        Ok(Labels(map))
    }

    /// One spelling per label set (keys sorted), so it can be the identity of a series in SQL.
    pub fn canonical(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_string())
    }

    pub fn from_canonical(s: &str) -> Self {
        Labels(serde_json::from_str(s).unwrap_or_default())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

fn is_label_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && k.len() <= MAX_LABEL_NAME_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plain_name_is_accepted() {
        assert_eq!(ChartName::parse("users").unwrap().as_str(), "users");
    }

    #[test]
    fn non_ascii_names_slashes_and_spaces_are_fine() {
        for name in ["注册用户", "shop/orders per day", "café.visits"] {
            assert_eq!(ChartName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn an_empty_or_blank_name_is_rejected() {
        assert_eq!(ChartName::parse("").unwrap_err().code, "invalid_chart");
        assert_eq!(ChartName::parse("   ").unwrap_err().code, "invalid_chart");
    }

    #[test]
    fn a_name_of_128_characters_is_accepted_and_129_is_rejected() {
        let ok = "é".repeat(128);
        assert!(ChartName::parse(&ok).is_ok());
        let e = ChartName::parse(&"a".repeat(129)).unwrap_err();
        assert!(e.message.contains("128"));
    }

    #[test]
    fn a_name_with_a_newline_is_rejected() {
        assert_eq!(ChartName::parse("a\nb").unwrap_err().code, "invalid_chart");
    }

    #[test]
    fn labels_are_canonical_whatever_order_they_came_in() {
        let a = Labels::from_json(&json!({"b":"2","a":"1"})).unwrap();
        let b = Labels::from_json(&json!({"a":"1","b":"2"})).unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), r#"{"a":"1","b":"2"}"#);
    }

    #[test]
    fn numeric_label_values_become_strings() {
        let l = Labels::from_json(&json!({"shard": 3})).unwrap();
        assert_eq!(l.canonical(), r#"{"shard":"3"}"#);
    }

    #[test]
    fn labels_that_are_not_an_object_are_rejected() {
        let e = Labels::from_json(&json!(["host"])).unwrap_err();
        assert_eq!(e.code, "invalid_labels");
    }

    #[test]
    fn a_label_name_with_a_dash_is_rejected() {
        assert!(Labels::from_json(&json!({"my-host":"a"})).is_err());
    }

    #[test]
    fn eleven_labels_are_too_many() {
        let mut m = serde_json::Map::new();
        for i in 0..11 {
            m.insert(format!("l{i}"), json!("x"));
        }
        assert!(Labels::from_json(&serde_json::Value::Object(m)).is_err());
    }

    #[test]
    fn query_labels_read_pairs_and_json_alike() {
        let pairs = Labels::from_query("host:prod1, region=eu").unwrap();
        let json = Labels::from_query(r#"{"region":"eu","host":"prod1"}"#).unwrap();
        assert_eq!(pairs, json);
        assert!(Labels::from_query("hostprod1").is_err());
    }

    #[test]
    fn canonical_labels_read_back_to_the_same_set() {
        let l = Labels::from_json(&json!({"host":"注册"})).unwrap();
        assert_eq!(Labels::from_canonical(&l.canonical()), l);
    }
}
