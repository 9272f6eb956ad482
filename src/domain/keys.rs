//! API keys: their format, hashing and constant-time comparison, scopes, chart prefixes, and the one
//! access check every route goes through.

use crate::domain::error::{strict_body_error, ApiError, Code};
use crate::domain::names::ChartName;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const KEY_PREFIX: &str = "pp_";
const ID_LEN: usize = 10;
const SECRET_LEN: usize = 32;
/// A short random id (channels), in the keys' alphabet.
pub fn short_id(bytes: &[u8; ID_LEN]) -> String {
    in_alphabet(bytes)
}

/// One character of the alphabet per random byte (32 letters: 5 bits of each byte).
fn in_alphabet(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect()
}

/// Random bytes a short id needs.
pub const SHORT_ID_BYTES: usize = ID_LEN;

/// Random bytes a new key needs: one per character of id and secret.
pub const KEY_RANDOM_BYTES: usize = ID_LEN + SECRET_LEN;
/// 32 letters and digits without look-alikes (no l, o, 0, 1), so keys survive being read aloud.
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

impl Scope {
    pub fn parse(raw: &str) -> Result<Scope, ApiError> {
        match raw {
            "ingest" | "write" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            _ => Err(ApiError::new(
                Code::InvalidScope,
                "scope must be ingest, read or admin",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// A freshly made key: the secret is shown once, only the hash is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKey {
    pub id: String,
    pub secret: String,
    pub hash: String,
}

impl NewKey {
    pub fn from_random(bytes: &[u8; KEY_RANDOM_BYTES]) -> NewKey {
        let chars = in_alphabet(bytes);
        let id = chars[..ID_LEN].to_string();
        let secret = format!("{KEY_PREFIX}{id}_{}", &chars[ID_LEN..]);
        NewKey {
            hash: hash_secret(&secret),
            id,
            secret,
        }
    }
}

/// The id part of a presented key, used to find its stored hash; `None` for anything that is not
/// shaped like one of our keys (it may still be the admin token).
pub fn key_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == ID_LEN && secret.len() == SECRET_LEN).then_some(id)
}

pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference, so timing tells nothing about the secret.
/// Both sides are hashed first to make the lengths equal.
pub fn secrets_match(presented: &str, expected_hash: &str) -> bool {
    let a = hash_secret(presented);
    if a.len() != expected_hash.len() {
        return false;
    }
    a.bytes()
        .zip(expected_hash.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Reads the key from `X-API-Key`, `Authorization: Bearer`, or `Authorization: Basic` with the
/// key as the password (what Prometheus clients' basic auth sends; the user name is ignored).
pub fn presented_key(x_api_key: Option<&str>, authorization: Option<&str>) -> Option<String> {
    if let Some(k) = x_api_key.map(str::trim).filter(|k| !k.is_empty()) {
        return Some(k.to_string());
    }
    let auth = authorization?.trim();
    let (scheme, token) = auth.split_once(' ')?;
    let token = token.trim();
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        token.to_string()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let pair = String::from_utf8(crate::domain::base64::decode(token)?).ok()?;
        pair.split_once(':')?.1.to_string()
    } else {
        return None;
    };
    (!key.is_empty()).then_some(key)
}

/// Which charts a key may see and touch.
#[derive(Debug, Clone, PartialEq)]
pub enum ChartLimit {
    /// Names starting with this, such as `shop.`.
    Prefix(String),
    /// This one chart only: what an embed or a README image needs.
    Exact(String),
}

impl ChartLimit {
    pub fn allows(&self, chart: &str) -> bool {
        match self {
            ChartLimit::Prefix(p) => chart.starts_with(p.as_str()),
            ChartLimit::Exact(c) => chart == c,
        }
    }

    /// A prefix every allowed name starts with, to narrow a listing in SQL.
    pub fn prefix(&self) -> &str {
        match self {
            ChartLimit::Prefix(p) | ChartLimit::Exact(p) => p,
        }
    }

    /// The names this limit allows, as a listing asks SQL for them: one name, or a range
    /// `[from, until)` in SQL's text order (UTF-8 bytes, which is code point order), so that a
    /// listing walks the chart index instead of every series.
    pub fn names(&self) -> Names {
        match self {
            ChartLimit::Exact(c) => Names::Exact(c.clone()),
            ChartLimit::Prefix(p) => Names::Range {
                from: p.clone(),
                until: after_prefix(p),
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ChartLimit::Prefix(p) => format!("charts starting with {p:?}"),
            ChartLimit::Exact(c) => format!("the chart {c:?}"),
        }
    }

    /// As stored: the name or prefix, and whether it must match the whole name.
    pub fn from_stored(prefix: Option<String>, exact: bool) -> Option<ChartLimit> {
        prefix.filter(|p| !p.is_empty()).map(|p| {
            if exact {
                ChartLimit::Exact(p)
            } else {
                ChartLimit::Prefix(p)
            }
        })
    }
}

/// Chart names as a listing selects them.
#[derive(Debug, Clone, PartialEq)]
pub enum Names {
    Exact(String),
    /// `until: None`: no upper bound.
    Range {
        from: String,
        until: Option<String>,
    },
}

/// The smallest text greater than every text that starts with `prefix`; `None` when there is none
/// (an empty prefix, or one made only of the highest code point).
pub fn after_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(c) = next {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// What `POST /api/v1/keys` asks for, parsed from its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRequest {
    pub scope: Scope,
    pub limit: Option<ChartLimit>,
    pub name: String,
}

impl KeyRequest {
    pub fn parse(body: &[u8]) -> Result<KeyRequest, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            scope: Option<String>,
            charts: Option<String>,
            chart: Option<String>,
            name: Option<String>,
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            strict_body_error(
                &e,
                |field| format!("unknown field {field:?}; a key has scope, charts or chart, and name"),
                Some("scope, charts, chart and name are strings: scope is ingest, read or admin; charts a chart-name prefix such as \"shop.\"; chart one chart's name"),
            )
        })?;
        let scope = Scope::parse(raw.scope.as_deref().ok_or_else(|| {
            ApiError::new(
                Code::MissingField,
                "scope is missing: ingest, read or admin",
            )
        })?)?;
        let text = |v: Option<String>| -> Result<Option<String>, ApiError> {
            match v {
                Some(p) if p.chars().count() > 128 => Err(ApiError::new(
                    Code::InvalidCharts,
                    "charts is a chart-name prefix such as \"shop.\" and chart one chart's name, at most 128 characters",
                )),
                Some(p) if !p.is_empty() => Ok(Some(p)),
                _ => Ok(None),
            }
        };
        let limit = match (text(raw.charts)?, text(raw.chart)?) {
            (None, None) => None,
            (Some(p), None) => Some(ChartLimit::Prefix(p)),
            (None, Some(c)) => Some(ChartLimit::Exact(
                ChartName::parse(&c)?.as_str().to_string(),
            )),
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    Code::InvalidCharts,
                    "give charts (a prefix) or chart (one chart), not both",
                ))
            }
        };
        if limit.is_some() && scope == Scope::Admin {
            return Err(ApiError::new(
                Code::InvalidCharts,
                "an admin key sees every chart; drop the chart limit or use the ingest or read scope",
            ));
        }
        let name = raw.name.unwrap_or_default();
        if name.chars().count() > 100 {
            return Err(ApiError::new(
                Code::InvalidName,
                "name must be a string of at most 100 characters",
            ));
        }
        Ok(KeyRequest { scope, limit, name })
    }
}

/// Who is calling, once the key checked out.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// Nobody presented a key; only public charts are readable.
    Anonymous,
    /// The ADMIN_TOKEN secret.
    AdminToken,
    Key {
        id: String,
        scope: Scope,
        /// Only these charts are visible and writable.
        limit: Option<ChartLimit>,
    },
}

/// What a request wants to do, for the access check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action<'a> {
    /// Sending points at all, decided before the body is read; each chart is checked after.
    IngestAny,
    Ingest(&'a ChartName),
    Read(&'a ChartName),
    ListCharts,
    ConfigureChart(&'a ChartName),
    /// Making a chart readable by anyone, or private again.
    PublishChart(&'a ChartName),
    /// A job's pings and schedule: like sending its points (its runs are charted).
    PingJob(&'a str),
    ReadJob(&'a str),
    /// Listing jobs: read scope, then each job checked against the key's chart limit.
    ListJobs,
    DeleteJob(&'a str),
    DeleteChart(&'a ChartName),
    ManageKeys,
    /// Channels hold webhook URLs, which are secrets, and the delivery log names them.
    ManageChannels,
    /// Alert rules tell every channel: making or deleting one is an admin's call.
    ManageAlerts,
    /// Listing rules: read scope, then each rule checked by its chart against the key's limit.
    ListAlerts,
}

impl Caller {
    /// The one access check. `public` says whether the chart in question is marked public.
    pub fn may(&self, action: Action, public: bool) -> Result<(), ApiError> {
        let (scope, limit) = match self {
            Caller::AdminToken => return Ok(()),
            Caller::Anonymous => {
                return match action {
                    Action::Read(_) if public => Ok(()),
                    _ => Err(ApiError::unauthorized()),
                }
            }
            Caller::Key { scope, limit, .. } => (*scope, limit.as_ref()),
        };
        let needed = match action {
            Action::IngestAny
            | Action::Ingest(_)
            | Action::ConfigureChart(_)
            | Action::PingJob(_) => Scope::Ingest,
            Action::Read(_)
            | Action::ListCharts
            | Action::ReadJob(_)
            | Action::ListJobs
            | Action::ListAlerts => Scope::Read,
            Action::PublishChart(_)
            | Action::DeleteChart(_)
            | Action::DeleteJob(_)
            | Action::ManageKeys
            | Action::ManageChannels
            | Action::ManageAlerts => Scope::Admin,
        };
        if let Action::Read(_) = action {
            if public {
                return Ok(());
            }
        }
        if scope != needed && scope != Scope::Admin {
            return Err(ApiError::forbidden(format!(
                "this key has the {} scope; this needs a key with the {} scope",
                scope.as_str(),
                needed.as_str()
            )));
        }
        let chart = match action {
            Action::Ingest(c)
            | Action::Read(c)
            | Action::ConfigureChart(c)
            | Action::PublishChart(c)
            | Action::DeleteChart(c) => Some(c.as_str()),
            Action::PingJob(j) | Action::ReadJob(j) | Action::DeleteJob(j) => Some(j),
            Action::IngestAny
            | Action::ListCharts
            | Action::ListJobs
            | Action::ManageKeys
            | Action::ManageChannels
            | Action::ManageAlerts
            | Action::ListAlerts => None,
        };
        if let (Some(chart), Some(limit)) = (chart, limit) {
            if !limit.allows(chart) {
                return Err(ApiError::forbidden(format!(
                    "this key is limited to {}",
                    limit.describe()
                )));
            }
        }
        Ok(())
    }

    /// The charts a listing is limited to.
    pub fn limit(&self) -> Option<&ChartLimit> {
        match self {
            Caller::Key { limit, .. } => limit.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: Scope, prefix: Option<&str>) -> Caller {
        Caller::Key {
            id: "abc".into(),
            scope,
            limit: prefix.map(|p| ChartLimit::Prefix(p.into())),
        }
    }

    fn chart(n: &str) -> ChartName {
        ChartName::parse(n).unwrap()
    }

    #[test]
    fn a_new_key_has_the_documented_shape_and_checks_against_its_hash() {
        let k = NewKey::from_random(&[7u8; KEY_RANDOM_BYTES]);
        assert!(k.secret.starts_with("pp_"));
        assert_eq!(key_id(&k.secret), Some(k.id.as_str()));
        assert!(secrets_match(&k.secret, &k.hash));
        assert!(!secrets_match(&format!("{}x", k.secret), &k.hash));
        assert!(!k.hash.contains(&k.secret));
    }

    #[test]
    fn different_random_bytes_make_different_keys() {
        let a = NewKey::from_random(&[1u8; KEY_RANDOM_BYTES]);
        let mut bytes = [1u8; KEY_RANDOM_BYTES];
        bytes[KEY_RANDOM_BYTES - 1] = 2;
        let b = NewKey::from_random(&bytes);
        assert_eq!(a.id, b.id);
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn strings_that_are_not_keys_have_no_id() {
        assert_eq!(key_id("hunter2"), None);
        assert_eq!(key_id("pp_short_x"), None);
    }

    #[test]
    fn the_key_is_read_from_either_header() {
        assert_eq!(presented_key(Some("k1"), None).as_deref(), Some("k1"));
        assert_eq!(
            presented_key(None, Some("Bearer k2")).as_deref(),
            Some("k2")
        );
        assert_eq!(
            presented_key(None, Some("bearer  k3 ")).as_deref(),
            Some("k3")
        );
        // Basic: the password is the key ("user:pp_key").
        assert_eq!(
            presented_key(None, Some("Basic dXNlcjpwcF9rZXk=")).as_deref(),
            Some("pp_key")
        );
        assert_eq!(presented_key(None, Some("Basic abc")), None);
        // No password: no key.
        assert_eq!(presented_key(None, Some("Basic dXNlcjo=")), None);
        assert_eq!(presented_key(Some(" "), None), None);
    }

    #[test]
    fn an_ingest_key_cannot_read_and_a_read_key_cannot_write() {
        let c = chart("users");
        assert!(key(Scope::Ingest, None)
            .may(Action::Ingest(&c), false)
            .is_ok());
        assert_eq!(
            key(Scope::Ingest, None)
                .may(Action::Read(&c), false)
                .unwrap_err()
                .status,
            403
        );
        assert!(key(Scope::Read, None).may(Action::Read(&c), false).is_ok());
        assert_eq!(
            key(Scope::Read, None)
                .may(Action::Ingest(&c), false)
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn a_key_limited_to_shop_cannot_touch_blog_users() {
        let k = key(Scope::Ingest, Some("shop."));
        assert!(k.may(Action::Ingest(&chart("shop.orders")), false).is_ok());
        let e = k
            .may(Action::Ingest(&chart("blog.users")), false)
            .unwrap_err();
        assert_eq!(e.status, 403);
        assert!(e.message.contains("shop."));
    }

    #[test]
    fn a_key_for_one_chart_does_not_reach_charts_that_share_its_prefix() {
        let k = Caller::Key {
            id: "abc".into(),
            scope: Scope::Read,
            limit: Some(ChartLimit::Exact("users".into())),
        };
        assert!(k.may(Action::Read(&chart("users")), false).is_ok());
        let e = k.may(Action::Read(&chart("users2")), false).unwrap_err();
        assert!(e.message.contains("the chart \"users\""));
        assert!(k.may(Action::Read(&chart("users.private")), false).is_err());
    }

    #[test]
    fn only_admins_manage_keys_and_delete_charts() {
        assert!(key(Scope::Ingest, None)
            .may(Action::ManageKeys, false)
            .is_err());
        assert!(key(Scope::Read, None)
            .may(Action::DeleteChart(&chart("a")), false)
            .is_err());
        assert!(key(Scope::Admin, None)
            .may(Action::ManageKeys, false)
            .is_ok());
        assert!(Caller::AdminToken.may(Action::ManageKeys, false).is_ok());
    }

    #[test]
    fn an_ingest_key_may_configure_its_chart_but_not_publish_it() {
        let k = key(Scope::Ingest, Some("shop."));
        let c = chart("shop.rev");
        assert!(k.may(Action::ConfigureChart(&c), false).is_ok());
        let e = k.may(Action::PublishChart(&c), false).unwrap_err();
        assert_eq!(e.status, 403);
        assert!(e.message.contains("admin"));
        assert!(key(Scope::Admin, None)
            .may(Action::PublishChart(&c), false)
            .is_ok());
    }

    #[test]
    fn a_key_limited_to_shop_can_ping_shop_backup_and_not_blog_backup() {
        let k = key(Scope::Ingest, Some("shop."));
        assert!(k.may(Action::PingJob("shop.backup"), false).is_ok());
        assert_eq!(
            k.may(Action::PingJob("blog.backup"), false)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            key(Scope::Read, None)
                .may(Action::PingJob("x"), false)
                .unwrap_err()
                .status,
            403
        );
        assert!(key(Scope::Read, Some("shop."))
            .may(Action::ReadJob("shop.backup"), false)
            .is_ok());
        assert!(key(Scope::Ingest, None)
            .may(Action::DeleteJob("x"), false)
            .is_err());
    }

    #[test]
    fn sending_points_at_all_needs_the_ingest_scope_before_any_chart_is_known() {
        assert!(key(Scope::Ingest, Some("x."))
            .may(Action::IngestAny, false)
            .is_ok());
        assert_eq!(
            key(Scope::Read, None)
                .may(Action::IngestAny, false)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            Caller::Anonymous
                .may(Action::IngestAny, false)
                .unwrap_err()
                .status,
            401
        );
    }

    #[test]
    fn the_range_after_a_prefix_holds_exactly_the_names_that_start_with_it() {
        assert_eq!(after_prefix("shop."), Some("shop/".to_string()));
        assert_eq!(after_prefix(""), None);
        assert_eq!(after_prefix("a\u{10FFFF}"), Some("b".to_string()));
        assert_eq!(after_prefix("\u{D7FF}"), Some("\u{E000}".to_string()));
        let Names::Range { from, until } = ChartLimit::Prefix("shop.".into()).names() else {
            panic!("a prefix is a range");
        };
        let until = until.unwrap();
        for name in ["shop.", "shop.orders", "shop.\u{10FFFF}x", "shop.注册"] {
            assert!(name >= from.as_str() && name < until.as_str(), "{name}");
        }
        for name in ["shop", "shop/", "shoq", "blog.users", "shop-x"] {
            assert!(!(name >= from.as_str() && name < until.as_str()), "{name}");
        }
    }

    #[test]
    fn a_key_for_one_chart_lists_exactly_that_name() {
        assert_eq!(
            ChartLimit::Exact("users".into()).names(),
            Names::Exact("users".into())
        );
    }

    #[test]
    fn a_key_request_is_parsed_with_clear_errors() {
        let k = KeyRequest::parse(br#"{"scope":"read","chart":"users","name":"readme"}"#).unwrap();
        assert_eq!(k.scope, Scope::Read);
        assert_eq!(k.limit, Some(ChartLimit::Exact("users".into())));
        assert_eq!(k.name, "readme");
        let p = KeyRequest::parse(br#"{"scope":"ingest","charts":"shop."}"#).unwrap();
        assert_eq!(p.limit, Some(ChartLimit::Prefix("shop.".into())));
        let code = |b: &[u8]| KeyRequest::parse(b).unwrap_err().code;
        assert_eq!(code(br#"{"scope":"root"}"#), "invalid_scope");
        assert_eq!(code(br#"{}"#), "missing_field");
        assert_eq!(code(br#"{"scope":"admin","charts":"a"}"#), "invalid_charts");
        assert_eq!(
            code(br#"{"scope":"read","charts":"a","chart":"b"}"#),
            "invalid_charts"
        );
        assert_eq!(code(br#"{"scope":"read","expires":1}"#), "unknown_field");
        assert_eq!(code(br#"{"scope":"read","name":7}"#), "invalid_body");
        assert_eq!(code(br#"[1]"#), "invalid_body");
        assert_eq!(code(b"nope"), "invalid_json");
        let long = format!(r#"{{"scope":"read","name":"{}"}}"#, "n".repeat(101));
        assert_eq!(code(long.as_bytes()), "invalid_name");
    }

    #[test]
    fn without_a_key_only_public_charts_can_be_read() {
        let c = chart("a");
        assert_eq!(
            Caller::Anonymous
                .may(Action::Read(&c), false)
                .unwrap_err()
                .status,
            401
        );
        assert!(Caller::Anonymous.may(Action::Read(&c), true).is_ok());
        assert!(Caller::Anonymous.may(Action::Ingest(&c), true).is_err());
    }
}
