//! The one error type of the API: an HTTP status, a stable machine-readable code and a message
//! that says what to fix.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// The position of the offending point in a batch, so a client can find it.
    pub index: Option<usize>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            index: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "unauthorized",
            "missing or wrong API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// What a client sees of any failure inside the service: the details go to the log only.
    pub fn internal() -> Self {
        Self::new(
            500,
            "internal_error",
            "something went wrong on our side; nothing from this request was stored",
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
        serde_json::to_string(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                index: self.index,
            },
        })
        .unwrap_or_else(|_| r#"{"error":{"code":"internal_error","message":"error"}}"#.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_serializes_to_the_documented_shape() {
        let e = ApiError::bad_request("invalid_value", "value must be a number").at(3);
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
    fn the_internal_error_says_nothing_about_internals() {
        let e = ApiError::internal();
        assert_eq!(e.status, 500);
        assert!(!e.message.to_lowercase().contains("sql"));
    }
}
