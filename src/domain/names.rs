//! Chart names and label sets: what identifies a series, parsed once at the edge.

use crate::domain::error::{ApiError, Code};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

pub const MAX_CHART_LEN: usize = 128;
pub const MAX_LABELS: usize = 10;
/// The most entries a `labels` object may hold, repeated names counted each time: room for
/// repeats, and a bound on the work of sorting them.
pub const MAX_LABEL_ENTRIES: usize = 2 * MAX_LABELS;
pub const MAX_LABEL_NAME_LEN: usize = 64;
pub const MAX_LABEL_VALUE_LEN: usize = 128;

/// A chart name: 1 to 128 characters, any script, no control characters, and usable as a URL path:
/// no `.` or `..` between slashes and no empty part, because clients and URL parsers collapse
/// those (even percent-encoded), so such a chart could never be read or deleted. A `/` at the end
/// of a URL is therefore never part of a chart name.
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
        if raw.starts_with('/') || raw.ends_with('/') || raw.contains("//") {
            return Err(ApiError::new(
                Code::InvalidChart,
                "chart name must not start or end with / or hold //: it must be usable in a URL path, where empty parts are dropped",
            ));
        }
        if raw.split('/').any(|part| part == "." || part == "..") {
            return Err(ApiError::new(
                Code::InvalidChart,
                "chart name must not be . or .. nor hold them between slashes: it must be usable in a URL path, where such parts are collapsed",
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

    /// Checks labels read from a request, in canonical order, against the label rules.
    pub fn from_sorted(sorted: SortedLabels) -> Result<Self, ApiError> {
        check(sorted.len(), sorted.iter())?;
        let mut labels = BTreeMap::new();
        for (k, v) in sorted.iter() {
            labels.insert(k.to_string(), v.to_string());
        }
        Ok(Labels(labels))
    }

    /// Checks labels given as name/value pairs, each name once (a Prometheus push's labels),
    /// against the same label rules.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        check(
            pairs.len(),
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        Ok(Labels(pairs.iter().cloned().collect()))
    }

    /// Whether these are exactly `sorted`, without building a label set to compare with.
    pub fn is(&self, sorted: SortedLabels) -> bool {
        self.0.len() == sorted.len()
            && self
                .0
                .iter()
                .zip(sorted.iter())
                .all(|((k, v), (k2, v2))| k == k2 && v == v2)
    }

    /// Reads the `labels` query parameter: a JSON object, or `name:value` pairs split by commas.
    pub fn from_query(raw: &str) -> Result<Self, ApiError> {
        let raw = raw.trim();
        if raw.starts_with('{') {
            let mut de = serde_json::Deserializer::from_str(raw);
            let mut input = LabelsInput::default();
            input
                .seed()
                .deserialize(&mut de)
                .and_then(|()| de.end())
                .map_err(|_| ApiError::new(Code::InvalidLabels, "labels is not valid JSON"))?;
            return Self::from_sorted(input.sorted()?);
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
        check(map.len(), map.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        Ok(Labels(map))
    }

    /// One spelling per label set (keys sorted), so it can be the identity of a series in SQL: a
    /// JSON object of strings, written by hand so that it cannot fail.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(
            2 + self
                .0
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>(),
        );
        out.push('{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, k);
            out.push(':');
            push_json_str(&mut out, v);
        }
        out.push('}');
        out
    }

    /// Reads back what `canonical` wrote (the `labels` column of a series). Anything else means
    /// the database was changed behind the service's back: an internal error, never a silent
    /// empty label set that would show one series as another.
    pub fn from_canonical(s: &str) -> Result<Self, ApiError> {
        serde_json::from_str(s)
            .map(Labels)
            .map_err(|_| ApiError::internal())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// The label rules, for `len` distinct labels.
fn check<'p>(
    len: usize,
    mut pairs: impl Iterator<Item = (&'p str, &'p str)>,
) -> Result<(), ApiError> {
    if len > MAX_LABELS {
        return Err(too_many_labels());
    }
    pairs.try_for_each(|(k, v)| {
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
        Ok(())
    })
}

fn too_many_labels() -> ApiError {
    ApiError::new(
        Code::InvalidLabels,
        format!("at most {MAX_LABELS} labels per point"),
    )
}

fn is_label_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && k.len() <= MAX_LABEL_NAME_LEN
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it: `"`, `\` and control
/// characters; everything else, non-ASCII included, as it is.
pub fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// The visitor methods for booleans, numbers and strings (not `null`), every one answering
/// `$answer`. A visitor must take every kind of JSON value: for a kind it leaves out, serde answers
/// with an error of its own, which would change what a client is told.
macro_rules! any_scalar {
    ($this:ident => $answer:expr) => {
        fn visit_bool<E>($this, _: bool) -> Result<Self::Value, E> {
            Ok($answer)
        }

        fn visit_i64<E>($this, _: i64) -> Result<Self::Value, E> {
            Ok($answer)
        }

        fn visit_u64<E>($this, _: u64) -> Result<Self::Value, E> {
            Ok($answer)
        }

        fn visit_f64<E>($this, _: f64) -> Result<Self::Value, E> {
            Ok($answer)
        }

        fn visit_str<E>($this, _: &str) -> Result<Self::Value, E> {
            Ok($answer)
        }
    };
}
pub(crate) use any_scalar;

/// A JSON string, borrowed from the text when it holds no escapes.
pub struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// Reads any JSON value and keeps nothing, with the checks a full parse makes (nesting depth,
/// numbers in range, valid strings), which serde's `IgnoredAny` skips in serde_json: a body is
/// valid JSON exactly when `serde_json::Value` would read it.
pub struct AnyJson;

impl<'de> DeserializeSeed<'de> for AnyJson {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyJson {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    any_scalar!(self => ());

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(AnyJson)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(AnyJson)?.is_some() {
            map.next_value_seed(AnyJson)?;
        }
        Ok(())
    }
}

/// One label as it came in a request, borrowed from the body where it can be. The value is `None`
/// when it was neither a string, a number nor a boolean (numbers and booleans become their JSON
/// text).
pub type LabelInput<'a> = (Cow<'a, str>, Option<Cow<'a, str>>);

/// A `labels` field as it came in a request. Its room is kept from point to point.
#[derive(Debug, Default)]
pub struct LabelsInput<'a> {
    shape: LabelsShape,
    /// The object's labels, in the order they came, perhaps with repeated names.
    pairs: Vec<LabelInput<'a>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum LabelsShape {
    /// `null`, or no field at all: no labels.
    #[default]
    None,
    NotObject,
    Object,
}

impl<'a> LabelsInput<'a> {
    /// No labels, as if the field was not there.
    pub fn clear(&mut self) {
        self.shape = LabelsShape::None;
        self.pairs.clear();
    }

    /// Reads the field's value, replacing what was read before (JSON readers keep the last of
    /// repeated fields).
    pub fn seed(&mut self) -> LabelsSeed<'_, 'a> {
        LabelsSeed(self)
    }

    /// The labels in canonical order: sorted by name, a repeated name keeping its last value (as
    /// any JSON reader does). Refuses what is not an object of strings, numbers and booleans; the
    /// label rules are `Labels::from_sorted`'s.
    pub fn sorted(&mut self) -> Result<SortedLabels<'_, 'a>, ApiError> {
        match self.shape {
            LabelsShape::None => return Ok(SortedLabels(&[])),
            LabelsShape::NotObject => {
                return Err(ApiError::new(
                    Code::InvalidLabels,
                    r#"labels must be an object of strings, like {"host":"prod1"}"#,
                ))
            }
            LabelsShape::Object => {}
        }
        let pairs = &mut self.pairs;
        // Labels usually come sorted already, and then hold no repeated name.
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            if pairs.len() > MAX_LABEL_ENTRIES {
                return Err(too_many_labels());
            }
            // A stable insertion sort (std's sort would weigh 2 KB in the wasm for these few
            // names), then the last of each repeated name.
            for i in 1..pairs.len() {
                let at = pairs[..i].partition_point(|p| p.0 <= pairs[i].0);
                pairs[at..=i].rotate_right(1);
            }
            pairs.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        if let Some((k, _)) = pairs.iter().find(|(_, v)| v.is_none()) {
            return Err(ApiError::new(
                Code::InvalidLabels,
                format!("label '{k}' must be a string"),
            ));
        }
        Ok(SortedLabels(pairs))
    }
}

/// Labels from a request in canonical order, every value a string: what `Labels` holds once
/// `Labels::from_sorted` checked the label rules.
#[derive(Debug, Clone, Copy)]
pub struct SortedLabels<'v, 'a>(&'v [LabelInput<'a>]);

impl<'v> SortedLabels<'v, '_> {
    pub fn len(self) -> usize {
        self.0.len()
    }

    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(self) -> impl Iterator<Item = (&'v str, &'v str)> {
        // `LabelsInput::sorted` made sure that every value is there.
        self.0
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_deref().unwrap_or_default()))
    }
}

/// Reads a `labels` field straight from the JSON text into a `LabelsInput`, strings borrowed
/// from the text.
pub struct LabelsSeed<'s, 'a>(&'s mut LabelsInput<'a>);

impl<'de> DeserializeSeed<'de> for LabelsSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> LabelsSeed<'_, 'de> {
    fn not_an_object(self) {
        self.0.clear();
        self.0.shape = LabelsShape::NotObject;
    }
}

impl<'de> Visitor<'de> for LabelsSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("labels")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let input = self.0;
        input.clear();
        input.shape = LabelsShape::Object;
        while let Some(name) = map.next_key_seed(Text)? {
            let value = map.next_value_seed(LabelValue)?;
            input.pairs.push((name, value));
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.clear();
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        AnyJson.visit_seq(seq)?;
        self.not_an_object();
        Ok(())
    }

    any_scalar!(self => self.not_an_object());
}

/// A label's value: strings as they are, numbers and booleans as their JSON text, anything else
/// `None`.
struct LabelValue;

impl<'de> DeserializeSeed<'de> for LabelValue {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LabelValue {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a label value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(if v { "true" } else { "false" })))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // serde_json's own spelling of the number (JSON has no NaN or infinity to refuse).
        Ok(serde_json::Number::from_f64(v).map(|n| Cow::Owned(n.to_string())))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        AnyJson.visit_seq(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        AnyJson.visit_map(map)?;
        Ok(None)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn labels(json: &str) -> Result<Labels, ApiError> {
        Labels::from_query(json)
    }

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
    fn a_name_that_is_a_dot_or_two_dots_is_rejected_because_urls_collapse_it() {
        for name in [".", ".."] {
            let e = ChartName::parse(name).unwrap_err();
            assert_eq!(e.code, "invalid_chart");
            assert!(e.message.contains("URL path"), "{}", e.message);
        }
    }

    #[test]
    fn a_dot_or_two_dots_between_slashes_is_rejected() {
        for name in ["a/./b", "a/../b", "./a", "../a", "a/.", "a/.."] {
            assert_eq!(
                ChartName::parse(name).unwrap_err().code,
                "invalid_chart",
                "{name}"
            );
        }
    }

    #[test]
    fn a_name_starting_or_ending_with_a_slash_or_holding_two_is_rejected() {
        for name in ["/a", "a/", "/", "a//b"] {
            let e = ChartName::parse(name).unwrap_err();
            assert_eq!(e.code, "invalid_chart", "{name}");
            assert!(e.message.contains("URL path"), "{}", e.message);
        }
    }

    #[test]
    fn dots_inside_a_part_of_the_name_are_fine() {
        for name in ["a.b", "...", "a/.b/c", "a/b../c", "v1.2/..x", ". /a"] {
            assert_eq!(ChartName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn labels_are_canonical_whatever_order_they_came_in() {
        let a = labels(r#"{"b":"2","a":"1"}"#).unwrap();
        let b = labels(r#"{"a":"1","b":"2"}"#).unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), r#"{"a":"1","b":"2"}"#);
    }

    #[test]
    fn numeric_and_boolean_label_values_become_their_json_text() {
        // Spelled as serde_json spells the number (1e21 as 1e+21).
        let l = labels(r#"{"shard":3,"neg":-2,"ratio":0.5,"big":1e21,"on":true}"#).unwrap();
        assert_eq!(
            l.canonical(),
            r#"{"big":"1e+21","neg":"-2","on":"true","ratio":"0.5","shard":"3"}"#
        );
    }

    #[test]
    fn a_repeated_label_name_keeps_its_last_value() {
        let l = labels(r#"{"h":"a","g":"x","h":"b"}"#).unwrap();
        assert_eq!(l.canonical(), r#"{"g":"x","h":"b"}"#);
    }

    #[test]
    fn labels_that_are_not_an_object_are_rejected() {
        for body in [r#"["host"]"#, r#""prod""#, "3", "true"] {
            let mut input = LabelsInput::default();
            let mut de = serde_json::Deserializer::from_str(body);
            input.seed().deserialize(&mut de).unwrap();
            assert_eq!(input.sorted().unwrap_err().code, "invalid_labels");
        }
    }

    #[test]
    fn a_label_value_that_is_null_an_array_or_an_object_is_rejected_and_named() {
        for body in [r#"{"h":null}"#, r#"{"h":[1]}"#, r#"{"h":{"x":1}}"#] {
            let e = labels(body).unwrap_err();
            assert_eq!(e.code, "invalid_labels");
            assert!(e.message.contains("'h'"), "{}", e.message);
        }
    }

    #[test]
    fn a_label_name_with_a_dash_is_rejected() {
        assert!(labels(r#"{"my-host":"a"}"#).is_err());
    }

    #[test]
    fn eleven_labels_are_too_many() {
        let body: Vec<String> = (0..11).map(|i| format!(r#""l{i}":"x""#)).collect();
        let e = labels(&format!("{{{}}}", body.join(","))).unwrap_err();
        assert!(e.message.contains("at most 10"));
    }

    #[test]
    fn labels_in_any_order_with_repeated_names_sort_to_the_last_values() {
        let l = labels(r#"{"z":"1","b":"x","a":"2","b":"y","c":3,"a":"4"}"#).unwrap();
        assert_eq!(l.canonical(), r#"{"a":"4","b":"y","c":"3","z":"1"}"#);
        let first_bad = labels(r#"{"z":null,"b":"x","d":[1],"b":null,"c":3}"#).unwrap_err();
        assert!(first_bad.message.contains("'b'"), "{}", first_bad.message);
    }

    #[test]
    fn an_unsorted_labels_object_of_more_than_20_entries_is_refused() {
        let repeats: Vec<String> = (0..=MAX_LABEL_ENTRIES)
            .map(|i| format!(r#""{}":"x""#, ["b", "a"][i % 2]))
            .collect();
        let e = labels(&format!("{{{}}}", repeats.join(","))).unwrap_err();
        assert!(e.message.contains("at most 10"), "{}", e.message);
        let fewer: Vec<String> = (0..MAX_LABEL_ENTRIES)
            .map(|i| format!(r#""{}":"x""#, ["b", "a"][i % 2]))
            .collect();
        assert_eq!(
            labels(&format!("{{{}}}", fewer.join(",")))
                .unwrap()
                .canonical(),
            r#"{"a":"x","b":"x"}"#
        );
    }

    #[test]
    fn query_labels_read_pairs_and_json_alike() {
        let pairs = Labels::from_query("host:prod1, region=eu").unwrap();
        let json = Labels::from_query(r#"{"region":"eu","host":"prod1"}"#).unwrap();
        assert_eq!(pairs, json);
        assert!(Labels::from_query("hostprod1").is_err());
        assert!(Labels::from_query(r#"{"host":"a"} trailing"#).is_err());
    }

    #[test]
    fn canonical_labels_read_back_to_the_same_set() {
        let l = labels(r#"{"host":"注册","q":"say \"hi\" \\ back"}"#).unwrap();
        assert_eq!(Labels::from_canonical(&l.canonical()).unwrap(), l);
    }

    #[test]
    fn a_stored_label_text_that_is_not_canonical_is_an_internal_error_not_empty_labels() {
        for bad in ["", "not json", "[]", r#"{"a":1}"#] {
            assert_eq!(
                Labels::from_canonical(bad).unwrap_err().code,
                "internal_error"
            );
        }
    }

    #[test]
    fn canonical_labels_escape_quotes_and_backslashes_and_keep_other_scripts_as_they_are() {
        let l = labels(r#"{"a":"say \"hi\"","b":"C:\\temp","c":"注册 café ✓"}"#).unwrap();
        assert_eq!(
            l.canonical(),
            r#"{"a":"say \"hi\"","b":"C:\\temp","c":"注册 café ✓"}"#
        );
        assert_eq!(l.canonical(), serde_json::to_string(l.as_map()).unwrap());
    }

    #[test]
    fn json_strings_are_escaped_exactly_as_serde_json_escapes_them() {
        // Control characters never reach a chart name or a label; the escaping is total anyway.
        let mut every: String = (0u8..0x80).map(char::from).collect();
        every.push_str("é注\u{2028}\u{1F600}\\\"/");
        for s in [
            every.as_str(),
            "",
            "plain",
            "\"",
            "\\",
            "a\u{1}b\u{1f}c\u{7f}",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
