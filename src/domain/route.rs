//! Which route a request is for: method and path in, a `Route` out, with chart names
//! percent-decoded from the rest of the path so they may hold `/`, spaces and any script.

use crate::domain::error::{ApiError, Code};
use crate::domain::job::{parse_ping_path, JobName, PingKind};
use crate::domain::names::ChartName;

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Health,
    Ingest,
    ListCharts,
    GetChart(ChartName),
    ConfigureChart(ChartName),
    DeleteChart(ChartName),
    CreateKey,
    ListKeys,
    DeleteKey(String),
    /// The embed page for one chart; other sites may frame it.
    Embed(ChartName),
    /// `/img/{chart}.svg`
    Image(ChartName),
    /// `/badge/{chart}.svg`
    Badge(ChartName),
    /// `/api/v1/ping/{job}[/start|/fail|/{exit code}]`, also `/ping/...` for short crontab lines.
    Ping(JobName, PingKind),
    ListJobs,
    GetJob(JobName),
    ConfigureJob(JobName),
    DeleteJob(JobName),
    ListChannels,
    CreateChannel,
    DeleteChannel(String),
    /// `POST /api/v1/channels/{id}/test`: sends a test message.
    TestChannel(String),
    ListNotifications,
    ListAlerts,
    CreateAlert,
    DeleteAlert(String),
    /// `GET /metrics`: the Prometheus exposition of pushed groups and of every series' last value.
    Scrape,
    /// `PUT`, `POST` or `DELETE /metrics/job/{job}{/name/value}*`, the Pushgateway's push API;
    /// the path after `/metrics/` as sent (the grouping labels are parsed with the push).
    Push(PushMethod, String),
}

/// What a push does to its group, as at the Pushgateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMethod {
    /// Replaces the whole group.
    Put,
    /// Replaces the metrics named in the body, keeps the others.
    Post,
    /// Removes the group.
    Delete,
}

impl Route {
    /// `Ok(None)`: not an API path, so the static assets may answer it.
    pub fn parse(method: &str, path: &str) -> Result<Option<Route>, ApiError> {
        let path = path.trim_end_matches('/');
        let allowed = |methods: &'static str, route: Option<Route>| match route {
            Some(r) => Ok(Some(r)),
            None => Err(ApiError::new(
                Code::MethodNotAllowed,
                format!("{path} answers {methods}"),
            )),
        };
        if path == "/api/v1/health" || path == "/health" {
            return allowed(
                "GET",
                (method == "GET" || method == "HEAD").then_some(Route::Health),
            );
        }
        if path == "/api/v1/ingest" || path == "/ingest" {
            return allowed("POST", (method == "POST").then_some(Route::Ingest));
        }
        if path == "/api/v1/charts" {
            return allowed("GET", (method == "GET").then_some(Route::ListCharts));
        }
        if let Some(rest) = path.strip_prefix("/api/v1/charts/") {
            let chart = ChartName::parse(&percent_decode(rest)?)?;
            return allowed(
                "GET, PUT, DELETE",
                match method {
                    "GET" => Some(Route::GetChart(chart)),
                    "PUT" | "PATCH" => Some(Route::ConfigureChart(chart)),
                    "DELETE" => Some(Route::DeleteChart(chart)),
                    _ => None,
                },
            );
        }
        for prefix in ["/api/v1/ping/", "/ping/"] {
            if let Some(rest) = path.strip_prefix(prefix) {
                let (job, kind) = parse_ping_path(rest)?;
                // Cron lines use curl (GET or POST) and wget (GET); HEAD is what a link checker
                // sends, and it pings too, as at healthchecks.
                let ok = matches!(method, "GET" | "POST" | "HEAD");
                return allowed("GET, POST", ok.then_some(Route::Ping(job, kind)));
            }
        }
        if path == "/metrics" {
            return allowed(
                "GET",
                matches!(method, "GET" | "HEAD").then_some(Route::Scrape),
            );
        }
        if let Some(rest) = path.strip_prefix("/metrics/") {
            let how = match method {
                "PUT" => Some(PushMethod::Put),
                "POST" => Some(PushMethod::Post),
                "DELETE" => Some(PushMethod::Delete),
                _ => None,
            };
            return allowed(
                "PUT, POST, DELETE",
                how.map(|m| Route::Push(m, rest.to_string())),
            );
        }
        if path == "/api/v1/jobs" {
            return allowed("GET", (method == "GET").then_some(Route::ListJobs));
        }
        if let Some(rest) = path.strip_prefix("/api/v1/jobs/") {
            let job = JobName::parse(&percent_decode(rest)?)?;
            return allowed(
                "GET, PUT, DELETE",
                match method {
                    "GET" => Some(Route::GetJob(job)),
                    "PUT" | "PATCH" => Some(Route::ConfigureJob(job)),
                    "DELETE" => Some(Route::DeleteJob(job)),
                    _ => None,
                },
            );
        }
        if path == "/api/v1/channels" {
            return allowed(
                "GET, POST",
                match method {
                    "GET" => Some(Route::ListChannels),
                    "POST" => Some(Route::CreateChannel),
                    _ => None,
                },
            );
        }
        if let Some(rest) = path.strip_prefix("/api/v1/channels/") {
            return match rest.strip_suffix("/test") {
                Some(id) => allowed(
                    "POST",
                    (method == "POST").then(|| Route::TestChannel(id.to_string())),
                ),
                None => allowed(
                    "DELETE",
                    (method == "DELETE").then(|| Route::DeleteChannel(rest.to_string())),
                ),
            };
        }
        if path == "/api/v1/alerts" {
            return allowed(
                "GET, POST",
                match method {
                    "GET" => Some(Route::ListAlerts),
                    "POST" => Some(Route::CreateAlert),
                    _ => None,
                },
            );
        }
        if let Some(id) = path.strip_prefix("/api/v1/alerts/") {
            return allowed(
                "DELETE",
                (method == "DELETE").then(|| Route::DeleteAlert(id.to_string())),
            );
        }
        if path == "/api/v1/notifications" {
            return allowed("GET", (method == "GET").then_some(Route::ListNotifications));
        }
        if path == "/api/v1/keys" {
            return allowed(
                "GET, POST",
                match method {
                    "GET" => Some(Route::ListKeys),
                    "POST" => Some(Route::CreateKey),
                    _ => None,
                },
            );
        }
        if let Some(id) = path.strip_prefix("/api/v1/keys/") {
            return allowed(
                "DELETE",
                (method == "DELETE").then(|| Route::DeleteKey(id.to_string())),
            );
        }
        let get = method == "GET" || method == "HEAD";
        if let Some(rest) = path.strip_prefix("/embed/") {
            let chart = ChartName::parse(&percent_decode(rest)?)?;
            return allowed("GET", get.then_some(Route::Embed(chart)));
        }
        for (prefix, image) in [("/img/", true), ("/badge/", false)] {
            if let Some(rest) = path.strip_prefix(prefix) {
                let name = rest.strip_suffix(".svg").ok_or_else(|| {
                    ApiError::not_found(format!("images end in .svg: {prefix}<chart>.svg"))
                })?;
                let chart = ChartName::parse(&percent_decode(name)?)?;
                let route = if image {
                    Route::Image(chart)
                } else {
                    Route::Badge(chart)
                };
                return allowed("GET", get.then_some(route));
            }
        }
        if path.starts_with("/api/") {
            return Err(ApiError::not_found(format!(
                "no API route {path}; see the README for the routes"
            )));
        }
        Ok(None)
    }
}

/// Decodes `%XX` escapes (UTF-8); `+` stays a plus, as in a path.
pub fn percent_decode(raw: &str) -> Result<String, ApiError> {
    let bad = || ApiError::new(Code::InvalidPath, "the path has a broken %-escape");
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Both digits are checked by hand: from_str_radix would also take "+4" as 4.
            let digit = |at: usize| -> Result<u8, ApiError> {
                let d = *bytes.get(at).ok_or_else(bad)?;
                (d as char).to_digit(16).map(|d| d as u8).ok_or_else(bad)
            };
            out.push(digit(i + 1)? * 16 + digit(i + 2)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route::parse(method, path).unwrap().unwrap()
    }

    #[test]
    fn alert_rules_are_listed_made_and_deleted() {
        assert_eq!(route("GET", "/api/v1/alerts"), Route::ListAlerts);
        assert_eq!(route("POST", "/api/v1/alerts"), Route::CreateAlert);
        assert_eq!(
            route("DELETE", "/api/v1/alerts/a_abc"),
            Route::DeleteAlert("a_abc".into())
        );
        assert_eq!(
            Route::parse("PUT", "/api/v1/alerts").unwrap_err().status,
            405
        );
    }

    #[test]
    fn the_pushgateway_paths_take_put_post_and_delete_and_the_scrape_get() {
        assert_eq!(route("GET", "/metrics"), Route::Scrape);
        assert_eq!(
            route("PUT", "/metrics/job/backup/instance/db1"),
            Route::Push(PushMethod::Put, "job/backup/instance/db1".into())
        );
        assert_eq!(
            route("POST", "/metrics/job@base64/YmFja3Vw"),
            Route::Push(PushMethod::Post, "job@base64/YmFja3Vw".into())
        );
        assert_eq!(
            route("DELETE", "/metrics/job/backup"),
            Route::Push(PushMethod::Delete, "job/backup".into())
        );
        assert_eq!(
            Route::parse("GET", "/metrics/job/backup")
                .unwrap_err()
                .status,
            405
        );
    }

    #[test]
    fn ingest_answers_on_both_paths() {
        assert_eq!(route("POST", "/api/v1/ingest"), Route::Ingest);
        assert_eq!(route("POST", "/ingest"), Route::Ingest);
    }

    #[test]
    fn a_get_on_ingest_is_405_naming_the_method() {
        let e = Route::parse("GET", "/api/v1/ingest").unwrap_err();
        assert_eq!(e.status, 405);
        assert!(e.message.contains("POST"));
    }

    #[test]
    fn chart_names_are_percent_decoded_and_may_hold_slashes() {
        assert_eq!(
            route("GET", "/api/v1/charts/%E6%B3%A8%E5%86%8C%E7%94%A8%E6%88%B7"),
            Route::GetChart(ChartName::parse("注册用户").unwrap())
        );
        assert_eq!(
            route("GET", "/api/v1/charts/shop/orders%20today"),
            Route::GetChart(ChartName::parse("shop/orders today").unwrap())
        );
        assert_eq!(
            route("DELETE", "/api/v1/charts/a%2Fb"),
            Route::DeleteChart(ChartName::parse("a/b").unwrap())
        );
    }

    #[test]
    fn a_broken_escape_is_a_clear_error() {
        assert_eq!(
            Route::parse("GET", "/api/v1/charts/%zz").unwrap_err().code,
            "invalid_path"
        );
        assert_eq!(
            Route::parse("GET", "/api/v1/charts/%E6").unwrap_err().code,
            "invalid_path"
        );
        for broken in ["%+4", "%-4", "% 4", "%4", "%"] {
            assert_eq!(
                percent_decode(broken).unwrap_err().code,
                "invalid_path",
                "{broken}"
            );
        }
        assert_eq!(percent_decode("%2b%2F").unwrap(), "+/");
    }

    #[test]
    fn unknown_api_paths_are_404_and_other_paths_are_left_to_assets() {
        assert_eq!(Route::parse("GET", "/api/v2/x").unwrap_err().status, 404);
        assert_eq!(Route::parse("GET", "/index.html").unwrap(), None);
    }

    #[test]
    fn images_and_embeds_take_the_chart_from_the_path() {
        let c = ChartName::parse("shop/orders").unwrap();
        assert_eq!(
            route("GET", "/img/shop%2Forders.svg"),
            Route::Image(c.clone())
        );
        assert_eq!(
            route("GET", "/badge/shop/orders.svg"),
            Route::Badge(c.clone())
        );
        assert_eq!(route("GET", "/embed/shop%2Forders"), Route::Embed(c));
        assert_eq!(
            Route::parse("GET", "/img/users.png").unwrap_err().status,
            404
        );
    }

    #[test]
    fn pings_answer_on_both_paths_with_their_kind() {
        let job = JobName::parse("backup").unwrap();
        assert_eq!(
            route("POST", "/api/v1/ping/backup/start"),
            Route::Ping(job.clone(), PingKind::Start)
        );
        assert_eq!(
            route("GET", "/ping/backup/3"),
            Route::Ping(job.clone(), PingKind::Exit(3))
        );
        assert_eq!(
            route("GET", "/ping/backup"),
            Route::Ping(job, PingKind::Success)
        );
        assert_eq!(Route::parse("PUT", "/ping/backup").unwrap_err().status, 405);
        assert_eq!(
            Route::parse("GET", "/ping/backup/256").unwrap_err().status,
            400
        );
    }

    #[test]
    fn job_routes_are_recognised() {
        let job = JobName::parse("shop/backup").unwrap();
        assert_eq!(route("GET", "/api/v1/jobs"), Route::ListJobs);
        assert_eq!(
            route("PUT", "/api/v1/jobs/shop%2Fbackup"),
            Route::ConfigureJob(job.clone())
        );
        assert_eq!(
            route("DELETE", "/api/v1/jobs/shop/backup"),
            Route::DeleteJob(job)
        );
    }

    #[test]
    fn channel_routes_are_recognised() {
        assert_eq!(route("POST", "/api/v1/channels"), Route::CreateChannel);
        assert_eq!(route("GET", "/api/v1/channels"), Route::ListChannels);
        assert_eq!(
            route("POST", "/api/v1/channels/abc/test"),
            Route::TestChannel("abc".into())
        );
        assert_eq!(
            route("DELETE", "/api/v1/channels/abc"),
            Route::DeleteChannel("abc".into())
        );
        assert_eq!(
            route("GET", "/api/v1/notifications"),
            Route::ListNotifications
        );
        assert_eq!(
            Route::parse("GET", "/api/v1/channels/abc/test")
                .unwrap_err()
                .status,
            405
        );
    }

    #[test]
    fn keys_routes_are_recognised() {
        assert_eq!(route("POST", "/api/v1/keys"), Route::CreateKey);
        assert_eq!(route("GET", "/api/v1/keys/"), Route::ListKeys);
        assert_eq!(
            route("DELETE", "/api/v1/keys/abc"),
            Route::DeleteKey("abc".into())
        );
    }
}
