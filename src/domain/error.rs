//! The one error type of the API: a stable machine-readable code that knows its HTTP status, and a
//! message that says what to fix.

use serde::Serialize;

macro_rules! codes {
    ($($variant:ident = $status:literal $text:literal,)*) => {
        /// Every error code the API answers with. The text is part of the API: clients match on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            pub fn status(self) -> u16 {
                match self {
                    $(Code::$variant => $status,)*
                }
            }
        }
    };
}

codes! {
    // The request as a whole.
    InvalidJson = 400 "invalid_json",
    InvalidBody = 400 "invalid_body",
    InvalidPath = 400 "invalid_path",
    UnknownField = 400 "unknown_field",
    MissingField = 400 "missing_field",
    DuplicateField = 400 "duplicate_field",
    EmptyBatch = 400 "empty_batch",
    // Points.
    InvalidPoint = 400 "invalid_point",
    InvalidChart = 400 "invalid_chart",
    InvalidLabels = 400 "invalid_labels",
    InvalidValue = 400 "invalid_value",
    ValueOutOfRange = 400 "value_out_of_range",
    InvalidTimestamp = 400 "invalid_timestamp",
    TimestampInMilliseconds = 400 "timestamp_in_milliseconds",
    TimestampInFuture = 400 "timestamp_in_future",
    TimestampTooOld = 400 "timestamp_too_old",
    // Pre-aggregated points.
    ConflictingFields = 400 "conflicting_fields",
    InvalidCount = 400 "invalid_count",
    InconsistentAggregate = 400 "inconsistent_aggregate",
    // Pushes in the Prometheus text format (`expo`, `push_path`).
    InvalidExposition = 400 "invalid_exposition",
    TimestampNotAllowed = 400 "timestamp_not_allowed",
    InvalidPushPath = 400 "invalid_push_path",
    // Queries, images and settings.
    InvalidRange = 400 "invalid_range",
    InvalidStep = 400 "invalid_step",
    InvalidAgg = 400 "invalid_agg",
    InvalidSpark = 400 "invalid_spark",
    InvalidSize = 400 "invalid_size",
    LabelsRequired = 400 "labels_required",
    InvalidBucketSeconds = 400 "invalid_bucket_seconds",
    InvalidPublic = 400 "invalid_public",
    // Keys.
    InvalidScope = 400 "invalid_scope",
    InvalidCharts = 400 "invalid_charts",
    InvalidName = 400 "invalid_name",
    // Who may do what.
    Unauthorized = 401 "unauthorized",
    Forbidden = 403 "forbidden",
    UrlKeyNotAllowed = 403 "url_key_not_allowed",
    AdminDisabled = 403 "admin_disabled",
    // What is not there.
    NotFound = 404 "not_found",
    ChartNotFound = 404 "chart_not_found",
    SeriesNotFound = 404 "series_not_found",
    MethodNotAllowed = 405 "method_not_allowed",
    BucketChangeNotPossible = 409 "bucket_change_not_possible",
    PayloadTooLarge = 413 "payload_too_large",
    BatchTooLarge = 413 "batch_too_large",
    UnsupportedMediaType = 415 "unsupported_media_type",
    TooManySeries = 422 "too_many_series",
    TooManyGroups = 422 "too_many_groups",
    // Our side.
    InternalError = 500 "internal_error",
    BadConfiguration = 500 "bad_configuration",
    WriteUnconfirmed = 503 "write_unconfirmed",
    Busy = 503 "busy",
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// Always `code.status()`; kept as a field because every response reads it.
    pub status: u16,
    pub code: Code,
    pub message: String,
    /// The position of the offending point in a batch, so a client can find it.
    pub index: Option<usize>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            index: None,
        }
    }

    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            Code::Unauthorized,
            "missing or wrong API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// What a client sees of any failure inside the service: the details go to the log only.
    pub fn internal() -> Self {
        Self::new(
            Code::InternalError,
            "something went wrong on our side; nothing from this request was stored",
        )
    }

    /// Nothing of the request was written, for reasons that pass (contention, the query budget
    /// of one invocation): the client should send it again.
    pub fn busy() -> Self {
        Self::new(
            Code::Busy,
            "nothing from this request was written because the service was busy; send it again",
        )
    }

    /// A write whose outcome is unknown: D1 failed after the request was sent, so the
    /// transaction may or may not have committed. Never "nothing was stored" then.
    pub fn write_unconfirmed() -> Self {
        Self::new(
            Code::WriteUnconfirmed,
            "the write did not confirm; the points may or may not have been stored",
        )
    }

    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            index: Option<usize>,
        }
        // Serializing two strings and a number cannot fail; the fallback only keeps this total.
        serde_json::to_string(&Body {
            error: Inner {
                code: self.code.as_str(),
                message: &self.message,
                index: self.index,
            },
        })
        .unwrap_or_else(|_| r#"{"error":{"code":"internal_error","message":"error"}}"#.to_string())
    }
}

/// The field a strict (`deny_unknown_fields`) serde parse refused, if that is why it failed, so
/// that every request body names a misspelt field the same way.
pub fn unknown_field(e: &serde_json::Error) -> Option<String> {
    let text = e.to_string();
    let rest = text.strip_prefix("unknown field `")?;
    rest.split('`').next().map(str::to_string)
}

/// The error for a strict request body (`deny_unknown_fields`) that did not parse: a misspelt field
/// named by `unknown`; with `wrong_types`, fields of the wrong type get that hint; anything else is
/// not a JSON object. One mapping, so every route words these the same way.
pub fn strict_body_error(
    e: &serde_json::Error,
    unknown: impl FnOnce(&str) -> String,
    wrong_types: Option<&str>,
) -> ApiError {
    if let Some(field) = unknown_field(e) {
        return ApiError::new(Code::UnknownField, unknown(&field));
    }
    match wrong_types {
        Some(hint) if e.is_data() => ApiError::new(Code::InvalidBody, hint),
        _ => ApiError::new(Code::InvalidJson, "the body must be a JSON object"),
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status,
            self.code.as_str(),
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_serializes_to_the_documented_shape() {
        let e = ApiError::new(Code::InvalidValue, "value must be a number").at(3);
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"]["code"], "invalid_value");
        assert_eq!(v["error"]["message"], "value must be a number");
        assert_eq!(v["error"]["index"], 3);
    }

    #[test]
    fn an_error_without_a_batch_position_has_no_index_field() {
        let v: serde_json::Value =
            serde_json::from_str(&ApiError::unauthorized().to_json()).unwrap();
        assert!(v["error"].get("index").is_none());
    }

    #[test]
    fn every_code_is_unique_and_names_its_status() {
        for (i, a) in Code::ALL.iter().enumerate() {
            assert!((400..600).contains(&a.status()), "{a}");
            for b in &Code::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
        assert_eq!(Code::BatchTooLarge.status(), 413);
    }

    #[test]
    fn a_misspelt_field_is_named_from_serdes_error() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            scope: Option<String>,
        }
        let e = serde_json::from_str::<Strict>(r#"{"scop":"read"}"#).unwrap_err();
        assert_eq!(unknown_field(&e).as_deref(), Some("scop"));
        let e = serde_json::from_str::<Strict>("nope").unwrap_err();
        assert_eq!(unknown_field(&e), None);
    }

    #[test]
    fn the_internal_error_says_nothing_about_internals() {
        let e = ApiError::internal();
        assert_eq!(e.status, 500);
        assert!(!e.message.to_lowercase().contains("sql"));
    }
}
