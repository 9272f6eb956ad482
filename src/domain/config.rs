//! Service settings from wrangler.toml `[vars]`, read strictly: a bad value is an error that names
//! the variable, never a silent default.

use crate::domain::time::parse_duration;

pub const DEFAULT_MAX_POINTS: u32 = 1000;
pub const DEFAULT_RETENTION_HOURS: u32 = 168;
pub const DEFAULT_BUCKET_SECONDS: u32 = 60;
pub const DEFAULT_MAX_VALUE: f64 = 1e9;
pub const DEFAULT_MAX_BATCH: u32 = 10_000;
pub const DEFAULT_MAX_SERIES_PER_CHART: u32 = 1000;
/// A pushed metrics group not pushed again for this long drops out of `GET /metrics`.
pub const DEFAULT_METRICS_TTL_SECONDS: i64 = 24 * 3600;

/// The largest body an ingest reads; past it the answer is 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Clocks of scripts drift; a point up to this far ahead of ours is still accepted.
pub const FUTURE_TOLERANCE_SECONDS: f64 = 300.0;
/// The most points one query answer holds.
pub const MAX_QUERY_POINTS: usize = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Buckets kept per series; older ones are trimmed on ingest.
    pub max_points: u32,
    pub retention_hours: u32,
    /// Bucket size for charts that have not set their own.
    pub bucket_seconds: u32,
    /// Largest absolute value accepted.
    pub max_value: f64,
    /// Most points in one ingest request.
    pub max_batch: u32,
    /// Most label sets one chart may hold: every read of a chart looks at its series.
    pub max_series_per_chart: u32,
    /// `PUBLIC_URL`: where the dashboard is, for links in notifications (`https://pp.example.com`,
    /// no trailing slash). Unset, a notification sent from a request links that request's origin,
    /// and one from the scheduled run has no links.
    pub public_url: Option<String>,
    /// `METRICS_TTL`: how long a pushed metrics group stays in `GET /metrics` after its last
    /// push (its points stay in the charts); `None` (`0`) keeps groups until deleted, as the
    /// Pushgateway does.
    pub metrics_ttl_seconds: Option<i64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_points: DEFAULT_MAX_POINTS,
            retention_hours: DEFAULT_RETENTION_HOURS,
            bucket_seconds: DEFAULT_BUCKET_SECONDS,
            max_value: DEFAULT_MAX_VALUE,
            max_batch: DEFAULT_MAX_BATCH,
            max_series_per_chart: DEFAULT_MAX_SERIES_PER_CHART,
            public_url: None,
            metrics_ttl_seconds: Some(DEFAULT_METRICS_TTL_SECONDS),
        }
    }
}

impl Config {
    /// `var` answers the value of a variable, or `None` when it is not set.
    pub fn load(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let d = Config::default();
        Ok(Config {
            max_points: int(&var, "MAX_POINTS", d.max_points, 1, 100_000)?,
            retention_hours: int(&var, "RETENTION_HOURS", d.retention_hours, 1, 24 * 365 * 10)?,
            bucket_seconds: int(&var, "BUCKET_SECONDS", d.bucket_seconds, 1, 86_400)?,
            max_value: float(&var, "MAX_VALUE", d.max_value)?,
            max_batch: int(&var, "MAX_BATCH", d.max_batch, 1, 10_000)?,
            max_series_per_chart: int(
                &var,
                "MAX_SERIES_PER_CHART",
                d.max_series_per_chart,
                1,
                100_000,
            )?,
            public_url: public_url(&var)?,
            metrics_ttl_seconds: metrics_ttl(&var)?,
        })
    }

    pub fn retention_seconds(&self) -> i64 {
        i64::from(self.retention_hours) * 3600
    }
}

fn int(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, String> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name} must be a whole number from {min} to {max}, but it is {raw:?}"
        )),
    }
}

fn public_url(var: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    let Some(raw) = var("PUBLIC_URL") else {
        return Ok(None);
    };
    let url = raw.trim().trim_end_matches('/');
    if url.is_empty() {
        return Ok(None);
    }
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match host {
        Some(rest)
            if !rest.is_empty()
                && !rest.contains(['?', '#', ' ', '"', '<', '>', '\\'])
                && !url.chars().any(char::is_control) =>
        {
            Ok(Some(url.to_string()))
        }
        _ => Err(format!(
            "PUBLIC_URL must be the dashboard's http(s) address such as https://pushplot.example.com, but it is {raw:?}"
        )),
    }
}

fn metrics_ttl(var: &impl Fn(&str) -> Option<String>) -> Result<Option<i64>, String> {
    let Some(raw) = var("METRICS_TTL") else {
        return Ok(Some(DEFAULT_METRICS_TTL_SECONDS));
    };
    if raw.trim() == "0" {
        return Ok(None);
    }
    parse_duration(&raw).map(Some).ok_or_else(|| {
        format!("METRICS_TTL must be a duration such as 24h, 90m or 7d, or 0 to keep groups until deleted, but it is {raw:?}")
    })
}

fn float(var: &impl Fn(&str) -> Option<String>, name: &str, default: f64) -> Result<f64, String> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!(
            "{name} must be a positive number such as 1e9, but it is {raw:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn pushed_groups_expire_after_a_day_unless_metrics_ttl_says_otherwise() {
        assert_eq!(load(&[]).unwrap().metrics_ttl_seconds, Some(86_400));
        assert_eq!(
            load(&[("METRICS_TTL", "90m")]).unwrap().metrics_ttl_seconds,
            Some(5400)
        );
        assert_eq!(
            load(&[("METRICS_TTL", "0")]).unwrap().metrics_ttl_seconds,
            None
        );
        let e = load(&[("METRICS_TTL", "soon")]).unwrap_err();
        assert!(e.contains("METRICS_TTL") && e.contains("soon"), "{e}");
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(|k| m.get(k).cloned())
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.max_points, 1000);
        assert_eq!(c.retention_hours, 168);
        assert_eq!(c.bucket_seconds, 60);
        assert_eq!(c.max_value, 1e9);
        assert_eq!(c.max_batch, 10_000);
        assert_eq!(c.max_series_per_chart, 1000);
    }

    #[test]
    fn public_url_is_an_http_address_without_its_trailing_slash() {
        assert_eq!(load(&[]).unwrap().public_url, None);
        assert_eq!(load(&[("PUBLIC_URL", "")]).unwrap().public_url, None);
        assert_eq!(
            load(&[("PUBLIC_URL", "https://pp.example.com/")])
                .unwrap()
                .public_url
                .as_deref(),
            Some("https://pp.example.com")
        );
        for bad in [
            "pp.example.com",
            "ftp://x",
            "https://",
            "https://a b",
            "https://x/?q",
        ] {
            let e = load(&[("PUBLIC_URL", bad)]).unwrap_err();
            assert!(e.contains("PUBLIC_URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn set_values_are_used() {
        let c = load(&[("MAX_POINTS", "50"), ("MAX_VALUE", "1e12")]).unwrap();
        assert_eq!(c.max_points, 50);
        assert_eq!(c.max_value, 1e12);
    }

    #[test]
    fn a_value_that_is_not_a_number_is_an_error_naming_the_variable() {
        let e = load(&[("MAX_POINTS", "lots")]).unwrap_err();
        assert!(e.contains("MAX_POINTS") && e.contains("lots"), "{e}");
    }

    #[test]
    fn zero_and_negative_values_are_errors_not_defaults() {
        assert!(load(&[("RETENTION_HOURS", "0")]).is_err());
        assert!(load(&[("BUCKET_SECONDS", "-60")]).is_err());
        assert!(load(&[("MAX_VALUE", "-1")]).is_err());
        assert!(load(&[("MAX_VALUE", "inf")]).is_err());
        assert!(load(&[("MAX_BATCH", "")]).is_err());
    }
}
