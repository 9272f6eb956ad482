//! Notifications: channels and how they are asked for, the event every channel is told about, its
//! message in each channel's format, and when a failed delivery is tried again.

use crate::domain::error::{strict_body_error, ApiError, Code};
use crate::domain::job::{JobName, Transition};
use crate::domain::names::ChartName;
use crate::domain::time::civil_from_days;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Longer URLs are refused: no webhook needs more, and every delivery log repeats it.
pub const MAX_CHANNEL_URL_LEN: usize = 2048;
pub const MAX_CHANNEL_NAME_LEN: usize = 100;
/// What a message shows of an event's detail (a run's exit code, duration and log tail): enough
/// to see what went wrong, short enough for a phone's lock screen. The run itself keeps it all.
pub const MAX_DETAIL_CHARS: usize = 500;
/// A header value or a delivery log line: one line that a log or a phone can show whole.
pub const MAX_LINE_CHARS: usize = 200;

/// Where a notification goes, and so what shape its body takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Our own JSON, for anything that takes a POST.
    Webhook,
    /// A Slack incoming webhook (Mattermost and others take the same shape).
    Slack,
    /// A Discord channel webhook.
    Discord,
    /// An ntfy topic URL, on ntfy.sh or a server of one's own.
    Ntfy,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Webhook,
        ChannelKind::Slack,
        ChannelKind::Discord,
        ChannelKind::Ntfy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::Ntfy => "ntfy",
        }
    }

    pub fn parse(raw: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// A channel's address: an http or https URL with a host, nothing a `fetch` would refuse or run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelUrl(String);

impl ChannelUrl {
    pub fn parse(raw: &str) -> Result<ChannelUrl, ApiError> {
        let bad = |why: &str| {
            ApiError::new(
                Code::InvalidBody,
                format!("url {why}; it is the channel's http(s) address, such as https://hooks.slack.com/services/..."),
            )
        };
        if raw.chars().count() > MAX_CHANNEL_URL_LEN {
            return Err(bad(&format!(
                "is longer than {MAX_CHANNEL_URL_LEN} characters"
            )));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not hold spaces or control characters"));
        }
        // Only the scheme is case-insensitive; `javascript:`, `file:` and the rest end here.
        let rest = match raw.split_once("://") {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                rest
            }
            _ => return Err(bad("must start with http:// or https://")),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            // fetch() refuses URLs with credentials, so such a channel could never deliver.
            return Err(bad("must not hold a user or password (user:password@host)"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (inside, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("has an unclosed [ in its host"))?;
            if inside.is_empty()
                || !inside
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return Err(bad("has a malformed IPv6 host"));
            }
            match after {
                "" => (inside, None),
                p => (
                    inside,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| bad("has a malformed port"))?,
                    ),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        if !authority.starts_with('[')
            && !host
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(bad("has characters a host name cannot hold"));
        }
        if let Some(p) = port {
            let ok = !p.is_empty()
                && p.len() <= 5
                && p.bytes().all(|b| b.is_ascii_digit())
                && matches!(p.parse::<u32>(), Ok(1..=65535));
            if !ok {
                return Err(bad("has a port that is not 1-65535"));
            }
        }
        Ok(ChannelUrl(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What `POST /api/v1/channels` asks for, parsed from its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRequest {
    pub kind: ChannelKind,
    pub url: ChannelUrl,
    /// Empty when not given.
    pub name: String,
}

impl ChannelRequest {
    pub fn parse(body: &[u8]) -> Result<ChannelRequest, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(rename = "type")]
            kind: Option<String>,
            url: Option<String>,
            name: Option<String>,
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            strict_body_error(
                &e,
                |field| format!("unknown field {field:?}; a channel has type, url and name"),
                Some("type, url and name are strings: type is webhook, slack, discord or ntfy; url the channel's http(s) address"),
            )
        })?;
        let kind = raw.kind.ok_or_else(|| {
            ApiError::new(
                Code::MissingField,
                "type is missing: webhook, slack, discord or ntfy",
            )
        })?;
        let kind = ChannelKind::parse(&kind).ok_or_else(|| {
            ApiError::new(
                Code::InvalidBody,
                format!("type {kind:?} is not one of webhook, slack, discord or ntfy"),
            )
        })?;
        let url = raw.url.ok_or_else(|| {
            ApiError::new(
                Code::MissingField,
                "url is missing: the channel's http(s) address",
            )
        })?;
        let url = ChannelUrl::parse(&url)?;
        let name = raw.name.unwrap_or_default();
        if name.chars().count() > MAX_CHANNEL_NAME_LEN || name.chars().any(char::is_control) {
            return Err(ApiError::new(
                Code::InvalidName,
                format!("name must be one line of at most {MAX_CHANNEL_NAME_LEN} characters"),
            ));
        }
        Ok(ChannelRequest { kind, url, name })
    }
}

/// Channels a job or rule may name instead of all of them.
pub const MAX_CHANNELS_NAMED: usize = 20;

/// A job's or rule's `channels`: `null` for every channel (the default), or a list of channel
/// ids. An empty list is refused: a job that should tell nobody is one to pause.
pub fn parse_channel_list(v: &Value) -> Result<Option<Vec<String>>, ApiError> {
    let bad = || {
        ApiError::new(
            Code::InvalidBody,
            format!(
                "channels must be null (every channel) or a list of 1 to {MAX_CHANNELS_NAMED} channel ids from GET /api/v1/channels"
            ),
        )
    };
    let list = match v {
        Value::Null => return Ok(None),
        Value::Array(list) if (1..=MAX_CHANNELS_NAMED).contains(&list.len()) => list,
        _ => return Err(bad()),
    };
    let mut ids: Vec<String> = Vec::with_capacity(list.len());
    for id in list {
        let id = id
            .as_str()
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
            .ok_or_else(bad)?;
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_string());
        }
    }
    Ok(Some(ids))
}

/// A rule's change of state, as `Event::alert` tells it.
pub struct AlertChange<'a> {
    pub name: &'a str,
    pub chart: &'a ChartName,
    /// The series' canonical labels (`{}` for none).
    pub labels: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub value: Option<f64>,
    pub detail: String,
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Job,
    Alert,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Job => "job",
            EventKind::Alert => "alert",
        }
    }
}

/// Whether an event is news of trouble, of recovery, or neither; it picks colours and emoji.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Bad,
    Good,
    Neutral,
}

/// What happened, told the same to every channel. Stored as JSON in the outbox (`to_json`), so
/// that a retry hours later sends what was true when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// The job's or the alert rule's name.
    pub name: String,
    /// The status before and after: "up", "down", "failed"... for a job, "ok", "firing" for an
    /// alert.
    pub from: String,
    pub to: String,
    /// When it happened, unix seconds.
    pub at: f64,
    /// The value that made an alert fire or clear.
    pub value: Option<f64>,
    /// For a job, its last run: exit code, duration and the start of its message, as one text.
    pub detail: Option<String>,
    /// The dashboard's page for it.
    pub url: Option<String>,
    /// A chart of it: `/img/...svg`.
    pub image: Option<String>,
}

impl Event {
    /// A job's change of status. Links are made only when the deployment's public URL is known.
    pub fn job(
        name: &JobName,
        change: &Transition,
        at: f64,
        detail: Option<String>,
        base_url: Option<&str>,
    ) -> Event {
        let base = base_url
            .map(|b| b.trim_end_matches('/'))
            .filter(|b| !b.is_empty());
        Event {
            kind: EventKind::Job,
            name: name.as_str().to_string(),
            from: change.from.as_str().to_string(),
            to: change.to.as_str().to_string(),
            at,
            value: None,
            detail,
            url: base.map(|b| format!("{b}/#/jobs/{}", percent_encode(name.as_str()))),
            image: base.map(|b| {
                format!(
                    "{b}/img/{}.svg",
                    percent_encode(name.duration_chart().as_str())
                )
            }),
        }
    }

    /// A rule's change of state: the value judged and, in `detail`, what it watches.
    pub fn alert(c: AlertChange<'_>, at: f64, base_url: Option<&str>) -> Event {
        let AlertChange {
            name,
            chart,
            labels,
            from,
            to,
            value,
            detail,
        } = c;
        let base = base_url
            .map(|b| b.trim_end_matches('/'))
            .filter(|b| !b.is_empty());
        let chart_enc = percent_encode(chart.as_str());
        let with_labels = if labels == "{}" || labels.is_empty() {
            String::new()
        } else {
            format!("?labels={}", percent_encode(labels))
        };
        Event {
            kind: EventKind::Alert,
            name: name.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            at,
            value,
            detail: Some(detail),
            url: base.map(|b| format!("{b}/#/chart/{chart_enc}{with_labels}")),
            image: base.map(|b| format!("{b}/img/{chart_enc}.svg{with_labels}")),
        }
    }

    pub fn tone(&self) -> Tone {
        match self.to.as_str() {
            "down" | "failed" | "firing" => Tone::Bad,
            "up" | "ok" => Tone::Good,
            _ => Tone::Neutral,
        }
    }

    pub fn to_json(&self) -> String {
        // An event is strings and numbers; the fallback only keeps this total.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    pub fn from_json(raw: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(raw)
    }

    /// The detail as every message shows it: at most `MAX_DETAIL_CHARS`, blank as none.
    fn shown_detail(&self) -> Option<String> {
        self.detail
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| clip(d, MAX_DETAIL_CHARS))
    }
}

/// One line for every channel: `backup is down (was up)`, `disk almost full is firing: 7.5`.
pub fn summary(event: &Event) -> String {
    let line = match (event.kind, event.value) {
        (EventKind::Job, _) => format!("{} is {} (was {})", event.name, event.to, event.from),
        (EventKind::Alert, Some(v)) => format!("{} is {}: {v}", event.name, event.to),
        (EventKind::Alert, None) => format!("{} is {}", event.name, event.to),
    };
    one_line(&line)
}

/// A request to send: what `fetch` needs besides the channel's URL and the POST method.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

const JSON: &str = "application/json";

/// The event in the shape the channel's receiver expects.
pub fn render(kind: ChannelKind, event: &Event) -> Delivery {
    match kind {
        ChannelKind::Webhook => webhook(event),
        ChannelKind::Slack => slack(event),
        ChannelKind::Discord => discord(event),
        ChannelKind::Ntfy => ntfy(event),
    }
}

fn webhook(event: &Event) -> Delivery {
    let body = json!({
        "kind": event.kind.as_str(),
        "name": event.name,
        "from": event.from,
        "to": event.to,
        "at": event.at,
        "value": event.value,
        "url": event.url,
        "image": event.image,
        "detail": event.shown_detail(),
    });
    Delivery {
        content_type: JSON,
        body: body.to_string(),
        headers: Vec::new(),
    }
}

/// Slack's limit on a section's text.
const SLACK_SECTION_CHARS: usize = 3000;

fn slack(event: &Event) -> Delivery {
    let emoji = match event.tone() {
        Tone::Bad => ":red_circle:",
        Tone::Good => ":large_green_circle:",
        Tone::Neutral => ":white_circle:",
    };
    let name = slack_escape(&clip(&event.name, MAX_LINE_CHARS));
    let to = slack_escape(&clip(&event.to, 50));
    let mut head = match (event.kind, event.value) {
        (EventKind::Job, _) => format!(
            "{emoji} *{name}* is *{to}* (was {})",
            slack_escape(&clip(&event.from, 50))
        ),
        (EventKind::Alert, Some(v)) => format!("{emoji} *{name}* is *{to}*: {v}"),
        (EventKind::Alert, None) => format!("{emoji} *{name}* is *{to}*"),
    };
    let mut links = Vec::new();
    if let Some(url) = &event.url {
        links.push(format!("<{}|Open in pushplot>", slack_url(url)));
    }
    let image = event.image.as_deref();
    if let Some(img) = image.filter(|i| !is_raster(i)) {
        links.push(format!("<{}|Chart>", slack_url(img)));
    }
    let links = links.join(" · ");
    // The detail gets what the headline and links leave of the section's limit.
    if !links.is_empty() && head.chars().count() + links.chars().count() < SLACK_SECTION_CHARS - 1 {
        head = format!("{head}\n{links}");
    }
    let text = match event.shown_detail() {
        Some(d) => {
            let room = SLACK_SECTION_CHARS.saturating_sub(head.chars().count() + 1);
            format!("{head}\n{}", slack_escape_within(&d, room))
        }
        None => head,
    };
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": text},
    })];
    // Slack shows png, jpg and gif only, and refuses the whole message if an image block's URL
    // is not one it can fetch: an SVG chart goes in as a link above instead.
    if let Some(img) = image.filter(|i| is_raster(i)) {
        blocks.push(json!({
            "type": "image",
            "image_url": img,
            "alt_text": clip(&format!("chart of {}", event.name), MAX_LINE_CHARS),
        }));
    }
    Delivery {
        content_type: JSON,
        body: json!({"text": text, "blocks": blocks}).to_string(),
        headers: Vec::new(),
    }
}

/// Discord's limits: message content, embed title and embed description.
const DISCORD_CONTENT_CHARS: usize = 2000;
const DISCORD_TITLE_CHARS: usize = 256;
const DISCORD_DESCRIPTION_CHARS: usize = 4096;

fn discord(event: &Event) -> Delivery {
    let (color, emoji) = match event.tone() {
        Tone::Bad => (0xD9_2D_20, "🔴"),
        Tone::Good => (0x2E_A0_43, "🟢"),
        Tone::Neutral => (0x9C_A3_AF, "⚪"),
    };
    let line = summary(event);
    let mut description = event.shown_detail().unwrap_or_default();
    let image = event.image.as_deref();
    // Discord embeds no SVG: such a chart is linked from the description instead.
    if let Some(img) = image.filter(|i| !is_raster(i)) {
        let link = format!("[Chart]({})", img.replace('(', "%28").replace(')', "%29"));
        if description.chars().count() + link.chars().count() + 2 <= DISCORD_DESCRIPTION_CHARS {
            description = if description.is_empty() {
                link
            } else {
                format!("{description}\n\n{link}")
            };
        }
    }
    let mut embed = Map::new();
    embed.insert("title".into(), clip(&line, DISCORD_TITLE_CHARS).into());
    // Discord refuses an empty description, so none is sent then.
    if !description.is_empty() {
        embed.insert(
            "description".into(),
            clip(&description, DISCORD_DESCRIPTION_CHARS).into(),
        );
    }
    embed.insert("color".into(), json!(color));
    if let Some(url) = &event.url {
        embed.insert("url".into(), url.as_str().into());
    }
    embed.insert("timestamp".into(), rfc3339(event.at).into());
    if let Some(img) = image.filter(|i| is_raster(i)) {
        embed.insert("image".into(), json!({ "url": img }));
    }
    let body = json!({
        "content": clip(&format!("{emoji} {line}"), DISCORD_CONTENT_CHARS),
        "embeds": [Value::Object(embed)],
        // A job named "@everyone" must not ping the whole server.
        "allowed_mentions": {"parse": []},
    });
    Delivery {
        content_type: JSON,
        body: body.to_string(),
        headers: Vec::new(),
    }
}

fn ntfy(event: &Event) -> Delivery {
    let (tags, priority) = match event.tone() {
        Tone::Bad => ("rotating_light", "high"),
        Tone::Good => ("white_check_mark", "default"),
        Tone::Neutral => ("information_source", "default"),
    };
    let mut headers = vec![
        ("Title", header_value(&summary(event))),
        ("Tags", tags.to_string()),
        ("Priority", priority.to_string()),
    ];
    if let Some(url) = &event.url {
        headers.push(("Click", header_value(url)));
    }
    Delivery {
        content_type: "text/plain; charset=utf-8",
        body: event.shown_detail().unwrap_or_else(|| summary(event)),
        headers,
    }
}

/// Waits after the 1st to the 5th failed attempt. The minutely scheduled check sends what is
/// due, so a minute is the shortest wait that means anything; the waits then grow so that a
/// receiver down for a deploy, an evening or a night (about 8.6 hours in all) still gets the
/// message, while one that is gone for good is given up on within the day instead of
/// costing a request every few minutes forever.
const RETRY_WAITS: [f64; 5] = [60.0, 300.0, 1800.0, 7200.0, 21_600.0];

/// When to try a delivery again after `attempts_made` attempts, the last at `last_at`; `None`
/// once 6 have failed. With none made yet it is due at once.
pub fn next_attempt(attempts_made: u32, last_at: f64) -> Option<f64> {
    match attempts_made {
        0 => Some(last_at),
        n => RETRY_WAITS.get(n as usize - 1).map(|wait| last_at + wait),
    }
}

/// Whether a receiver took the message: any 2xx. Redirects are followed by `fetch`, so a 3xx
/// here is a receiver that did not answer as a webhook should.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// One line for the delivery log: `HTTP 204`, `HTTP 400: invalid_blocks`, `network: ...`.
pub fn describe(status: Option<u16>, error: Option<&str>) -> String {
    let error = error.map(str::trim).filter(|e| !e.is_empty());
    let line = match (status, error) {
        (Some(s), Some(e)) => format!("HTTP {s}: {e}"),
        (Some(s), None) => format!("HTTP {s}"),
        (None, Some(e)) => format!("network: {e}"),
        (None, None) => "network: no response".to_string(),
    };
    clip(&one_line(&line), MAX_LINE_CHARS)
}

/// At most `max` characters, ending in `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Newlines and other control characters become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A header value fetch will send and ntfy will read: one ASCII line of at most 200 characters.
fn header_value(s: &str) -> String {
    let ascii: String = s
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            c if c.is_ascii() => c,
            _ => '?',
        })
        .collect();
    let ascii = ascii.trim();
    if ascii.len() <= MAX_LINE_CHARS {
        return ascii.to_string();
    }
    // All ASCII now, so bytes are characters; `…` would not be ASCII.
    format!("{}...", &ascii[..MAX_LINE_CHARS - 3])
}

/// The three characters Slack's mrkdwn reads as markup.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escaped, and cut to `max` characters without splitting an entity.
fn slack_escape_within(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            c => c.to_string(),
        };
        let len = piece.chars().count();
        // Keep one character free for the `…` if more is to come.
        let reserve = usize::from(chars.peek().is_some());
        if used + len + reserve > max {
            if max > used {
                out.push('…');
            }
            break;
        }
        out.push_str(&piece);
        used += len;
    }
    out
}

/// A URL inside `<url|label>`: `|` and `>` would end it early.
fn slack_url(url: &str) -> String {
    slack_escape(&url.replace('|', "%7C"))
}

/// Whether Slack and Discord can show this image inline (png, jpg, gif).
fn is_raster(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".gif"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Everything but the unreserved characters escaped, `/` included: a job name is one segment
/// of a link, and the routes decode `%2F` back into the name.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `2023-11-14T22:13:20Z`, whole seconds, as Discord's embed timestamp wants it.
fn rfc3339(at: f64) -> String {
    let secs = if at.is_finite() { at.floor() as i64 } else { 0 };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::Status;

    const AT: f64 = 1_700_000_000.0;
    const BASE: &str = "https://pp.example.dev";

    fn job_event(from: Status, to: Status, detail: Option<&str>, base: Option<&str>) -> Event {
        Event::job(
            &JobName::parse("backup").unwrap(),
            &Transition { from, to },
            AT,
            detail.map(str::to_string),
            base,
        )
    }

    fn down() -> Event {
        job_event(
            Status::Up,
            Status::Down,
            Some("exit 1 after 12s: disk full"),
            Some(BASE),
        )
    }

    fn alert(to: &str, value: Option<f64>) -> Event {
        Event {
            kind: EventKind::Alert,
            name: "disk almost full".into(),
            from: "ok".into(),
            to: to.into(),
            at: AT,
            value,
            detail: None,
            url: None,
            image: None,
        }
    }

    fn body(kind: ChannelKind, event: &Event) -> Value {
        let d = render(kind, event);
        serde_json::from_str(&d.body).unwrap()
    }

    fn header<'a>(d: &'a Delivery, name: &str) -> Option<&'a str> {
        d.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn channel_kinds_round_trip_through_their_names() {
        for k in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ChannelKind::parse("ntfy"), Some(ChannelKind::Ntfy));
        assert_eq!(ChannelKind::parse("Slack"), None);
        assert_eq!(ChannelKind::parse("email"), None);
    }

    #[test]
    fn a_channel_request_is_parsed_with_clear_errors() {
        let c = ChannelRequest::parse(
            br#"{"type":"slack","url":"https://hooks.slack.com/services/T/B/x","name":"ops"}"#,
        )
        .unwrap();
        assert_eq!(c.kind, ChannelKind::Slack);
        assert_eq!(c.url.as_str(), "https://hooks.slack.com/services/T/B/x");
        assert_eq!(c.name, "ops");
        let n =
            ChannelRequest::parse(br#"{"type":"ntfy","url":"http://127.0.0.1:8080/t"}"#).unwrap();
        assert_eq!(n.name, "");
        let code = |b: &[u8]| ChannelRequest::parse(b).unwrap_err().code;
        assert_eq!(code(br#"{"url":"https://a.b"}"#), "missing_field");
        assert_eq!(code(br#"{"type":"webhook"}"#), "missing_field");
        assert_eq!(
            code(br#"{"type":"email","url":"https://a.b"}"#),
            "invalid_body"
        );
        assert_eq!(code(br#"{"type":"webhook","url":7}"#), "invalid_body");
        assert_eq!(code(br#"[1]"#), "invalid_body");
        assert_eq!(code(b"nope"), "invalid_json");
        let long = format!(
            r#"{{"type":"webhook","url":"https://a.b","name":"{}"}}"#,
            "n".repeat(101)
        );
        assert_eq!(code(long.as_bytes()), "invalid_name");
        assert_eq!(
            code(br#"{"type":"webhook","url":"https://a.b","name":"a\nb"}"#),
            "invalid_name"
        );
    }

    #[test]
    fn a_misspelt_field_in_a_channel_request_is_named() {
        let e = ChannelRequest::parse(br#"{"type":"webhook","url":"https://a.b","nmae":"x"}"#)
            .unwrap_err();
        assert_eq!(e.code, "unknown_field");
        assert!(e.message.contains("\"nmae\""), "{}", e.message);
    }

    #[test]
    fn a_channel_url_must_be_http_or_https_with_a_host() {
        for ok in [
            "https://hooks.slack.com/services/T0/B0/abc",
            "HTTPS://discord.com/api/webhooks/1/x",
            "http://localhost:9000",
            "http://127.0.0.1:8080/hook?x=1#y",
            "http://[::1]:8080/hook",
            "https://ntfy.sh/my-topic",
            "https://bücher.example/hook",
        ] {
            assert!(ChannelUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "javascript://alert(1)",
            "file:///etc/passwd",
            "ftp://example.com/x",
            "https://",
            "https:///path",
            "http://:8080/x",
            "//example.com/x",
            "example.com/x",
            "https://user:pw@example.com/x",
            "https://exa mple.com/",
            "https://example.com/\nx",
            "https://example.com:0/",
            "https://example.com:99999/",
            "https://example.com:/",
            "https://[::1/x",
            "https://[zz]/x",
            "https://exa\\mple.com/",
        ] {
            let e = ChannelUrl::parse(bad).unwrap_err();
            assert_eq!(e.code, "invalid_body", "{bad}");
            assert!(e.message.starts_with("url "), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn a_channel_url_longer_than_2048_characters_is_refused() {
        let at_limit = format!("https://a.b/{}", "x".repeat(MAX_CHANNEL_URL_LEN - 12));
        assert_eq!(at_limit.len(), MAX_CHANNEL_URL_LEN);
        assert!(ChannelUrl::parse(&at_limit).is_ok());
        let e = ChannelUrl::parse(&format!("{at_limit}x")).unwrap_err();
        assert!(e.message.contains("2048"));
    }

    #[test]
    fn a_job_event_links_to_the_job_page_and_its_duration_chart() {
        let e = down();
        assert_eq!(e.kind, EventKind::Job);
        assert_eq!((e.from.as_str(), e.to.as_str()), ("up", "down"));
        assert_eq!(
            e.url.as_deref(),
            Some("https://pp.example.dev/#/jobs/backup")
        );
        assert_eq!(
            e.image.as_deref(),
            Some("https://pp.example.dev/img/backup.duration.svg")
        );
    }

    #[test]
    fn a_job_name_with_slashes_spaces_and_any_script_is_percent_encoded_in_links() {
        let e = Event::job(
            &JobName::parse("shop/nightly 备份").unwrap(),
            &Transition {
                from: Status::Up,
                to: Status::Failed,
            },
            AT,
            None,
            Some("https://pp.example.dev/"),
        );
        assert_eq!(
            e.url.as_deref(),
            Some("https://pp.example.dev/#/jobs/shop%2Fnightly%20%E5%A4%87%E4%BB%BD")
        );
        let image = e.image.unwrap();
        assert!(image.starts_with("https://pp.example.dev/img/shop%2Fnightly%20"));
        assert!(image.ends_with(".duration.svg"));
        let path = image.strip_prefix("https://pp.example.dev").unwrap();
        assert_eq!(
            crate::domain::route::Route::parse("GET", path).unwrap(),
            Some(crate::domain::route::Route::Image(
                crate::domain::names::ChartName::parse("shop/nightly 备份.duration").unwrap()
            ))
        );
    }

    #[test]
    fn without_a_base_url_an_event_has_no_links() {
        for base in [None, Some(""), Some("/")] {
            let e = job_event(Status::Down, Status::Up, None, base);
            assert_eq!(e.url, None);
            assert_eq!(e.image, None);
        }
    }

    #[test]
    fn an_event_survives_the_outbox_as_json() {
        let e = down();
        assert_eq!(Event::from_json(&e.to_json()).unwrap(), e);
        let a = alert("firing", Some(7.5));
        assert_eq!(Event::from_json(&a.to_json()).unwrap(), a);
        assert!(Event::from_json("{}").is_err());
    }

    #[test]
    fn the_summary_says_what_changed_in_one_line() {
        assert_eq!(summary(&down()), "backup is down (was up)");
        assert_eq!(
            summary(&alert("firing", Some(7.5))),
            "disk almost full is firing: 7.5"
        );
        assert_eq!(summary(&alert("ok", None)), "disk almost full is ok");
        let mut odd = alert("firing", None);
        odd.name = "two\nlines".into();
        assert_eq!(summary(&odd), "two lines is firing");
    }

    #[test]
    fn trouble_recovery_and_the_rest_have_their_own_tone() {
        assert_eq!(down().tone(), Tone::Bad);
        assert_eq!(
            job_event(Status::Up, Status::Failed, None, None).tone(),
            Tone::Bad
        );
        assert_eq!(alert("firing", None).tone(), Tone::Bad);
        assert_eq!(
            job_event(Status::Down, Status::Up, None, None).tone(),
            Tone::Good
        );
        assert_eq!(alert("ok", None).tone(), Tone::Good);
        assert_eq!(
            job_event(Status::Up, Status::Late, None, None).tone(),
            Tone::Neutral
        );
    }

    #[test]
    fn the_webhook_body_is_the_event_with_nulls_where_absent() {
        let d = render(ChannelKind::Webhook, &down());
        assert_eq!(d.content_type, "application/json");
        assert!(d.headers.is_empty());
        let v: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(v["kind"], "job");
        assert_eq!(v["name"], "backup");
        assert_eq!(v["from"], "up");
        assert_eq!(v["to"], "down");
        assert_eq!(v["at"], AT);
        assert_eq!(v["value"], Value::Null);
        assert_eq!(v["url"], "https://pp.example.dev/#/jobs/backup");
        assert_eq!(v["image"], "https://pp.example.dev/img/backup.duration.svg");
        assert_eq!(v["detail"], "exit 1 after 12s: disk full");
        let a = body(ChannelKind::Webhook, &alert("firing", Some(7.5)));
        assert_eq!(a["kind"], "alert");
        assert_eq!(a["value"], 7.5);
        for field in ["url", "image", "detail"] {
            assert!(a.get(field).unwrap().is_null(), "{field}");
        }
    }

    #[test]
    fn the_slack_message_is_a_short_mrkdwn_line_plus_the_detail() {
        let v = body(ChannelKind::Slack, &down());
        let text = v["text"].as_str().unwrap();
        assert!(
            text.starts_with(":red_circle: *backup* is *down* (was up)\n"),
            "{text}"
        );
        assert!(text.contains("<https://pp.example.dev/#/jobs/backup|Open in pushplot>"));
        assert!(text.ends_with("exit 1 after 12s: disk full"));
        assert_eq!(v["blocks"][0]["type"], "section");
        assert_eq!(v["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(v["blocks"][0]["text"]["text"], text);
        let up = body(
            ChannelKind::Slack,
            &job_event(Status::Down, Status::Up, None, None),
        );
        assert_eq!(
            up["text"],
            ":large_green_circle: *backup* is *up* (was down)"
        );
        assert_eq!(up["blocks"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn slack_gets_an_image_block_only_for_an_image_it_can_show() {
        // Our charts are SVG, which Slack cannot show: linked, with no image block.
        let v = body(ChannelKind::Slack, &down());
        assert_eq!(v["blocks"].as_array().unwrap().len(), 1);
        assert!(v["text"]
            .as_str()
            .unwrap()
            .contains("<https://pp.example.dev/img/backup.duration.svg|Chart>"));
        let mut png = down();
        png.image = Some("https://pp.example.dev/img/backup.duration.png?range=7d".into());
        let v = body(ChannelKind::Slack, &png);
        assert_eq!(v["blocks"][1]["type"], "image");
        assert_eq!(
            v["blocks"][1]["image_url"],
            "https://pp.example.dev/img/backup.duration.png?range=7d"
        );
        assert_eq!(v["blocks"][1]["alt_text"], "chart of backup");
        assert!(!v["text"].as_str().unwrap().contains("|Chart>"));
    }

    #[test]
    fn slack_markup_in_names_and_details_is_escaped() {
        let mut e = alert("firing", Some(1.0));
        e.name = "a<b>&c".into();
        e.detail = Some("<!channel> & <http://evil|click>".into());
        let text = body(ChannelKind::Slack, &e)["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains("*a&lt;b&gt;&amp;c*"), "{text}");
        assert!(text.contains("&lt;!channel&gt; &amp; &lt;http://evil|click&gt;"));
        assert!(!text.contains("<!channel>"));
    }

    #[test]
    fn a_slack_section_stays_within_3000_characters_without_splitting_an_entity() {
        let mut e = down();
        e.name = "n".repeat(MAX_LINE_CHARS * 2);
        e.detail = Some("&".repeat(2000));
        let text = body(ChannelKind::Slack, &e)["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.chars().count() <= SLACK_SECTION_CHARS);
        // 500 characters of detail at most, each `&` written as `&amp;`.
        let detail = text.rsplit('\n').next().unwrap();
        assert!(detail.ends_with("&amp;…"), "{detail}");
        assert_eq!(detail.matches("&amp;").count(), MAX_DETAIL_CHARS - 1);
        assert_eq!(slack_escape_within("a&b", 6), "a…");
        assert_eq!(slack_escape_within("a&bc", 7), "a&amp;…");
        assert_eq!(slack_escape_within("a&b", 7), "a&amp;b");
        assert_eq!(slack_escape_within("&&", 5), "…");
    }

    #[test]
    fn the_discord_message_has_a_coloured_embed_with_a_utc_timestamp() {
        let v = body(ChannelKind::Discord, &down());
        assert_eq!(v["content"], "🔴 backup is down (was up)");
        let embed = &v["embeds"][0];
        assert_eq!(embed["title"], "backup is down (was up)");
        assert_eq!(
            embed["description"].as_str().unwrap().lines().next(),
            Some("exit 1 after 12s: disk full")
        );
        assert!(embed["description"]
            .as_str()
            .unwrap()
            .ends_with("[Chart](https://pp.example.dev/img/backup.duration.svg)"));
        assert_eq!(embed["color"], 0xD92D20);
        assert_eq!(embed["url"], "https://pp.example.dev/#/jobs/backup");
        assert_eq!(embed["timestamp"], "2023-11-14T22:13:20Z");
        // An SVG would not show in Discord.
        assert!(embed.get("image").is_none());
        assert_eq!(v["allowed_mentions"]["parse"], json!([]));
        let up = body(ChannelKind::Discord, &alert("ok", None));
        assert_eq!(up["embeds"][0]["color"], 0x2EA043);
        assert!(up["embeds"][0].get("description").is_none());
        assert!(up["embeds"][0].get("url").is_none());
    }

    #[test]
    fn discord_shows_a_raster_image_in_the_embed() {
        let mut e = down();
        e.image = Some("https://pp.example.dev/c.PNG".into());
        let v = body(ChannelKind::Discord, &e);
        assert_eq!(
            v["embeds"][0]["image"]["url"],
            "https://pp.example.dev/c.PNG"
        );
        assert_eq!(v["embeds"][0]["description"], "exit 1 after 12s: disk full");
    }

    #[test]
    fn discord_content_title_and_description_stay_within_discords_limits() {
        let mut e = alert("firing", Some(2.0));
        e.name = "x".repeat(5000);
        e.detail = Some("y".repeat(10_000));
        let v = body(ChannelKind::Discord, &e);
        let chars = |v: &Value| v.as_str().unwrap().chars().count();
        assert_eq!(chars(&v["content"]), DISCORD_CONTENT_CHARS);
        assert_eq!(chars(&v["embeds"][0]["title"]), DISCORD_TITLE_CHARS);
        assert_eq!(chars(&v["embeds"][0]["description"]), MAX_DETAIL_CHARS);
        assert!(v["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .ends_with('…'));
    }

    #[test]
    fn the_timestamp_is_rfc_3339_utc_in_whole_seconds() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400.9), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199.0), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(f64::NAN), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn ntfy_gets_plain_text_with_title_tags_priority_and_click_headers() {
        let d = render(ChannelKind::Ntfy, &down());
        assert_eq!(d.content_type, "text/plain; charset=utf-8");
        assert_eq!(d.body, "exit 1 after 12s: disk full");
        assert_eq!(header(&d, "Title"), Some("backup is down (was up)"));
        assert_eq!(header(&d, "Tags"), Some("rotating_light"));
        assert_eq!(header(&d, "Priority"), Some("high"));
        assert_eq!(
            header(&d, "Click"),
            Some("https://pp.example.dev/#/jobs/backup")
        );
        let ok = render(ChannelKind::Ntfy, &alert("ok", Some(3.0)));
        assert_eq!(ok.body, "disk almost full is ok: 3");
        assert_eq!(header(&ok, "Tags"), Some("white_check_mark"));
        assert_eq!(header(&ok, "Priority"), Some("default"));
        assert_eq!(header(&ok, "Click"), None);
    }

    #[test]
    fn ntfy_headers_are_one_ascii_line_of_at_most_200_characters() {
        let mut e = alert("firing", None);
        e.name = format!("备份\r\nX-Evil: 1 🚨 {}", "z".repeat(400));
        let d = render(ChannelKind::Ntfy, &e);
        let title = header(&d, "Title").unwrap();
        assert!(title.starts_with("??  X-Evil: 1 ? zzz"), "{title}");
        assert!(title.ends_with("..."));
        assert_eq!(title.len(), MAX_LINE_CHARS);
        for (_, v) in &d.headers {
            assert!(v.is_ascii() && !v.contains(['\r', '\n']), "{v}");
        }
    }

    #[test]
    fn a_message_full_of_quotes_newlines_and_emoji_stays_valid_json_everywhere() {
        let nasty = "he said \"stop\"\n\\n\t🚨🔥 </script> \u{0}\u{2028} 'end'";
        let mut e = down();
        e.name = "q\"uote".into();
        e.detail = Some(nasty.into());
        for kind in [
            ChannelKind::Webhook,
            ChannelKind::Slack,
            ChannelKind::Discord,
        ] {
            let v = body(kind, &e);
            assert!(v.is_object(), "{kind:?}");
        }
        assert_eq!(body(ChannelKind::Webhook, &e)["detail"], nasty);
        assert_eq!(body(ChannelKind::Webhook, &e)["name"], "q\"uote");
        assert!(body(ChannelKind::Discord, &e)["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with(nasty));
        assert_eq!(render(ChannelKind::Ntfy, &e).body, nasty.trim());
    }

    #[test]
    fn every_channel_shows_at_most_500_characters_of_detail() {
        let mut e = down();
        e.detail = Some(format!("{}{}", "é".repeat(MAX_DETAIL_CHARS), "TAIL"));
        let shown = body(ChannelKind::Webhook, &e)["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(shown.chars().count(), MAX_DETAIL_CHARS);
        assert!(shown.ends_with('…') && !shown.contains("TAIL"));
        assert!(!render(ChannelKind::Ntfy, &e).body.contains("TAIL"));
        assert!(!body(ChannelKind::Slack, &e)["text"]
            .as_str()
            .unwrap()
            .contains("TAIL"));
        e.detail = Some("  \n ".into());
        assert_eq!(body(ChannelKind::Webhook, &e)["detail"], Value::Null);
        assert_eq!(
            render(ChannelKind::Ntfy, &e).body,
            "backup is down (was up)"
        );
    }

    #[test]
    fn a_failed_delivery_is_retried_after_1_5_30_120_and_360_minutes_then_given_up() {
        assert_eq!(next_attempt(0, AT), Some(AT));
        assert_eq!(next_attempt(1, AT), Some(AT + 60.0));
        assert_eq!(next_attempt(2, AT), Some(AT + 300.0));
        assert_eq!(next_attempt(3, AT), Some(AT + 1800.0));
        assert_eq!(next_attempt(4, AT), Some(AT + 7200.0));
        assert_eq!(next_attempt(5, AT), Some(AT + 21_600.0));
        assert_eq!(next_attempt(6, AT), None);
        assert_eq!(next_attempt(u32::MAX, AT), None);
    }

    #[test]
    fn only_a_2xx_answer_is_a_delivery() {
        for s in [200, 201, 202, 204, 299] {
            assert!(is_success(s), "{s}");
        }
        for s in [0, 100, 199, 301, 304, 400, 404, 429, 500, 503] {
            assert!(!is_success(s), "{s}");
        }
    }

    #[test]
    fn a_delivery_is_described_in_one_line_of_at_most_200_characters() {
        assert_eq!(describe(Some(204), None), "HTTP 204");
        assert_eq!(describe(Some(500), None), "HTTP 500");
        assert_eq!(
            describe(Some(400), Some("invalid_blocks\n")),
            "HTTP 400: invalid_blocks"
        );
        assert_eq!(
            describe(None, Some("connection refused")),
            "network: connection refused"
        );
        assert_eq!(describe(None, Some(" ")), "network: no response");
        let long = describe(None, Some(&format!("a\nb{}", "x".repeat(500))));
        assert_eq!(long.chars().count(), MAX_LINE_CHARS);
        assert!(long.starts_with("network: a b"));
    }
}
