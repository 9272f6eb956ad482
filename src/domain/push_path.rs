//! The Pushgateway's push path, `/metrics/job/{job}{/label_name/label_value}*`: the grouping
//! key that names a group of pushed metrics.
//!
//! Read as the Pushgateway reads it (`splitLabels` and `decodeBase64` in its handler/push.go):
//! the path is percent-decoded first and split on `/` after, so even `%2F` separates; `@base64`
//! after `job` or a label name marks a value in URL-safe base64, padding optional, `=` for an
//! empty value. Stricter in two places, where the Pushgateway silently keeps one of two values: a
//! label named twice (also `job`) is refused, and so is an empty value written as `//`, which its
//! router would collapse.

use crate::domain::error::{ApiError, Code};
use crate::domain::names::Labels;
use crate::domain::route::percent_decode;

/// A push's grouping labels: `job` first, then the path's other labels sorted by name, so that
/// one group has one spelling whatever order its path gave. They obey pushplot's label rules,
/// since every pushed sample carries them into its chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping(Vec<(String, String)>);

impl Grouping {
    /// Reads a request path as the runtime gives it (still percent-encoded), starting with
    /// `/metrics/job`.
    pub fn parse(path: &str) -> Result<Grouping, ApiError> {
        let path = percent_decode(path).map_err(|e| bad(e.message))?;
        let rest = path.strip_prefix("/metrics/job").unwrap_or_default();
        let (encoded, rest) = match rest.strip_prefix("@base64") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let rest = rest.strip_prefix('/').ok_or_else(|| {
            bad("a push path looks like /metrics/job/{job}{/label_name/label_value}*")
        })?;
        let (job, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let job = value("job", job, encoded)?;
        if job.is_empty() {
            return Err(bad("the job name is required: /metrics/job/{job}"));
        }
        let mut labels = vec![("job".to_string(), job)];
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        if !parts.len().is_multiple_of(2) {
            return Err(bad(format!(
                "odd number of parts after the job in {path:?}: labels come as /name/value pairs (a value holding / goes in base64: name@base64/...)"
            )));
        }
        for pair in parts.chunks(2) {
            let (name, encoded) = match pair[0].strip_suffix("@base64") {
                Some(name) => (name, true),
                None => (pair[0], false),
            };
            if !is_label_name(name) {
                return Err(bad(format!(
                    "improper label name {name:?}: [a-zA-Z_][a-zA-Z0-9_]*, not starting with __"
                )));
            }
            if labels.iter().any(|(k, _)| k == name) {
                return Err(bad(format!("the label {name} is in the path twice")));
            }
            labels.push((name.to_string(), value(name, pair[1], encoded)?));
        }
        // Sorted by name after job.
        crate::domain::expo::sort(&mut labels[1..]);
        Labels::from_pairs(&labels)
            .map_err(|e| bad(format!("the path's labels: {}", e.message)))?;
        Ok(Grouping(labels))
    }

    pub fn job(&self) -> &str {
        &self.0[0].1
    }

    /// The labels, `job` first: what `expo::parse` sets on every sample.
    pub fn labels(&self) -> &[(String, String)] {
        &self.0
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidPushPath, message)
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with("__")
}

/// A path part as a label value: as it is, or decoded from base64 (`encoded`).
fn value(name: &str, raw: &str, encoded: bool) -> Result<String, ApiError> {
    if !encoded {
        if raw.is_empty() && name != "job" {
            return Err(bad(format!(
                "the label {name} has an empty value; write an empty value as {name}@base64/="
            )));
        }
        return Ok(raw.to_string());
    }
    crate::domain::base64::decode(raw)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            bad(format!(
                "invalid base64 for {name}: {raw:?} (URL-safe base64 of UTF-8 text, padding optional, = for empty)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(path: &str) -> Vec<(String, String)> {
        Grouping::parse(path).unwrap().labels().to_vec()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn refused(path: &str) -> ApiError {
        let e = Grouping::parse(path).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "invalid_push_path"),
            "{path}"
        );
        e
    }

    #[test]
    fn the_examples_of_the_pushgateway_readme_read_as_it_says() {
        assert_eq!(
            labels("/metrics/job/directory_cleaner/path@base64/L3Zhci90bXA"),
            pairs(&[("job", "directory_cleaner"), ("path", "/var/tmp")])
        );
        assert_eq!(
            labels("/metrics/job/example/first_label@base64/=/second_label/foobar"),
            pairs(&[
                ("job", "example"),
                ("first_label", ""),
                ("second_label", "foobar")
            ])
        );
        let titan = pairs(&[("job", "titan"), ("name", "Προμηθεύς")]);
        assert_eq!(
            labels(
                "/metrics/job/titan/name/%CE%A0%CF%81%CE%BF%CE%BC%CE%B7%CE%B8%CE%B5%CF%8D%CF%82"
            ),
            titan
        );
        assert_eq!(
            labels("/metrics/job/titan/name@base64/zqDPgc6_zrzOt864zrXPjc-C"),
            titan
        );
        // The two paths it says will not work.
        refused("/metrics/job/directory_cleaner/path//var/tmp");
        refused("/metrics/job/example/first_label//second_label/foobar");
    }

    #[test]
    fn a_job_alone_is_a_grouping_of_one_label_and_a_trailing_slash_changes_nothing() {
        let g = Grouping::parse("/metrics/job/backup").unwrap();
        assert_eq!((g.job(), g.labels().len()), ("backup", 1));
        assert_eq!(labels("/metrics/job/backup/"), pairs(&[("job", "backup")]));
    }

    #[test]
    fn the_job_may_be_base64_too() {
        assert_eq!(
            labels("/metrics/job@base64/L3Zhci90bXA/instance/a"),
            pairs(&[("job", "/var/tmp"), ("instance", "a")])
        );
        assert!(refused("/metrics/job@base64/=")
            .message
            .contains("job name is required"));
    }

    #[test]
    fn base64_reads_url_safe_and_standard_alphabets_with_or_without_padding() {
        for raw in ["fn5-", "fn5+", "fn5-==", "fn5+="] {
            assert_eq!(
                labels(&format!("/metrics/job/j/v@base64/{raw}"))[1].1,
                "~~~",
                "{raw}"
            );
        }
        for raw in ["L3Zhci90bXA", "L3Zhci90bXA=", "L3Zhci90bXA%3D"] {
            assert_eq!(
                labels(&format!("/metrics/job/j/v@base64/{raw}"))[1].1,
                "/var/tmp",
                "{raw}"
            );
        }
        for raw in ["=", "==", "%3D"] {
            assert_eq!(
                labels(&format!("/metrics/job/j/v@base64/{raw}"))[1].1,
                "",
                "{raw}"
            );
        }
    }

    #[test]
    fn base64_that_is_not_base64_or_not_utf8_is_refused() {
        for raw in ["a", "ab*c", "a=b", "_w", "%C3%A9"] {
            let e = refused(&format!("/metrics/job/j/v@base64/{raw}"));
            assert!(
                e.message.contains("invalid base64 for v"),
                "{raw}: {}",
                e.message
            );
        }
    }

    #[test]
    fn labels_after_the_job_are_sorted_by_name_so_a_group_has_one_spelling() {
        let a = Grouping::parse("/metrics/job/j/zone/eu/b/2/instance/x").unwrap();
        let b = Grouping::parse("/metrics/job/j/instance/x/zone/eu/b/2").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.labels(),
            pairs(&[("job", "j"), ("b", "2"), ("instance", "x"), ("zone", "eu")])
        );
    }

    #[test]
    fn the_path_is_percent_decoded_before_it_is_split_as_in_the_pushgateway() {
        assert_eq!(
            labels("/metrics/job/a%20b/host/db%2Done"),
            pairs(&[("job", "a b"), ("host", "db-one")])
        );
        // A + is a plus in a path, not a space.
        assert_eq!(labels("/metrics/job/c++")[0].1, "c++");
        // %2F is a separator: a job with a slash goes in base64.
        assert!(refused("/metrics/job/a%2Fb").message.contains("odd number"));
        assert!(refused("/metrics/job/a%zz").message.contains("%-escape"));
    }

    #[test]
    fn an_odd_number_of_parts_is_refused() {
        for path in [
            "/metrics/job/j/instance",
            "/metrics/job/j/a/1/b",
            "/metrics/job/j/a/1/",
        ] {
            assert!(refused(path).message.contains("odd number"), "{path}");
        }
    }

    #[test]
    fn a_label_named_twice_is_refused_job_included() {
        assert!(refused("/metrics/job/j/a/1/a/2")
            .message
            .contains("label a is in the path twice"));
        assert!(refused("/metrics/job/j/job/k")
            .message
            .contains("label job"));
        assert!(refused("/metrics/job/j/a/1/a@base64/Mg")
            .message
            .contains("twice"));
    }

    #[test]
    fn a_label_name_outside_the_prometheus_grammar_or_reserved_is_refused() {
        for name in ["9a", "a-b", "a.b", "__x", "", "%C3%A9", "a@base65"] {
            let e = refused(&format!("/metrics/job/j/{name}/v"));
            assert!(
                e.message.contains("improper label name"),
                "{name}: {}",
                e.message
            );
        }
        assert_eq!(labels("/metrics/job/j/_a9/v")[1].0, "_a9");
    }

    #[test]
    fn an_empty_job_or_a_path_not_under_metrics_job_is_refused() {
        for path in ["/metrics/job/", "/metrics/job//a/b", "/metrics/job"] {
            assert!(
                refused(path).message.contains("/metrics/job/{job}"),
                "{path}"
            );
        }
        for path in [
            "/metrics",
            "/metrics/jobs/x",
            "/metrics/job@base6/x",
            "/api/v1/ingest",
        ] {
            assert!(refused(path).message.contains("looks like"), "{path}");
        }
    }

    #[test]
    fn grouping_labels_obey_pushplots_label_limits() {
        let many: String = (0..10).map(|i| format!("/l{i}/x")).collect();
        let e = refused(&format!("/metrics/job/j{many}"));
        assert!(e.message.contains("at most 10 labels"), "{}", e.message);
        let long = "v".repeat(129);
        assert!(refused(&format!("/metrics/job/j/a/{long}"))
            .message
            .contains("at most 128"));
        // A newline can only come in base64; a chart label cannot hold it.
        assert!(refused("/metrics/job/j/a@base64/YQpi")
            .message
            .contains("control characters"));
    }
}
