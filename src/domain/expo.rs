//! The Prometheus text exposition format 0.0.4: a Pushgateway push body read into metric
//! families, those families written back for `GET /metrics`, and the points a push charts.
//!
//! The reader follows Prometheus' own (`expfmt.TextParser` in prometheus/common, which the
//! Pushgateway runs on every push). Where that reader lets something through that the format's
//! specification forbids (prometheus/docs, exposition_formats.md, "Grouping and sorting") or that
//! it drops without a word, this one refuses it, naming the line: a metric's lines apart, a HELP
//! after its samples, a series twice, a bucket without `le`, a quantile sample without
//! `quantile`, a histogram sample without its suffix, a negative count, a label name starting
//! with `__`. It is more lenient where that costs nothing: the last line needs no line feed, and
//! blanks may end a sample or a TYPE line. Not read: the newer quoted UTF-8 names (which the
//! Pushgateway refuses too unless told otherwise) and gauge histograms (no client sends them in
//! this format).

use crate::domain::config::Config;
use crate::domain::error::{ApiError, Code};
use crate::domain::ingest::{Batch, SeriesHash, SeriesPoints, Value};
use crate::domain::names::{ChartName, Labels, MAX_LABEL_VALUE_LEN};
use crate::domain::time::Timestamp;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

/// The longest line read, in bytes. It bounds what one sample costs (its labels, their values),
/// and is far above what clients write: client_python's longest lines are its HELP texts.
pub const MAX_LINE_BYTES: usize = 4096;

/// A label value is refused past pushplot's own limit (`MAX_LABEL_VALUE_LEN` characters): every
/// sample becomes a chart point, whose labels could not hold it anyway, and this says so early.
pub const MAX_SAMPLE_LABEL_VALUE: usize = MAX_LABEL_VALUE_LEN;

/// A metric family's type, from its `# TYPE` line; `Untyped` without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Counter,
        Kind::Gauge,
        Kind::Histogram,
        Kind::Summary,
        Kind::Untyped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
        }
    }

    /// As Prometheus reads a TYPE line: any case.
    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// A metric family: its samples, with the HELP and TYPE that came before them. A histogram or a
/// summary named `x` holds the samples `x_bucket`, `x` (quantiles), `x_sum` and `x_count`.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

/// One sample line.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The name as written: `x_bucket`, `x_sum`... for the family `x`.
    pub name: String,
    /// Sorted by name, each name once, the push's grouping labels among them.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// The 1-based line it was read from, for errors found after reading.
    pub line: usize,
}

/// Samples are equal when they are the same series with the same value, wherever they were read:
/// NaN equals NaN here, since a pushed NaN is a value like any other and must survive a round trip.
impl PartialEq for Sample {
    fn eq(&self, other: &Sample) -> bool {
        self.name == other.name
            && self.labels == other.labels
            && (self.value == other.value || self.value.is_nan() && other.value.is_nan())
    }
}

/// What is wrong with a push body, and on which line (1-based). `code` is the API's: mostly
/// `invalid_exposition`, `timestamp_not_allowed` for a sample carrying its own time, and the
/// ingest codes (`invalid_chart`, `invalid_labels`, `batch_too_large`) for what pushplot cannot
/// chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpoError {
    pub line: usize,
    pub code: Code,
    pub message: String,
}

impl ExpoError {
    fn new(line: usize, code: Code, message: impl Into<String>) -> Self {
        ExpoError {
            line,
            code,
            message: message.into(),
        }
    }
}

fn invalid(line: usize, message: impl Into<String>) -> ExpoError {
    ExpoError::new(line, Code::InvalidExposition, message)
}

impl std::fmt::Display for ExpoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl From<ExpoError> for ApiError {
    fn from(e: ExpoError) -> ApiError {
        ApiError::new(e.code, e.to_string())
    }
}

/// Families, or series, found by a hash of their name (and labels): the ingest path's map, so no
/// new map code lands in the wasm. Hashes are only a shortcut; names are always compared in full.
type ByHash = HashMap<u64, usize, BuildHasherDefault<SeriesHash>>;

fn hash_of(name: &str, labels: &[(String, String)]) -> u64 {
    let mut h = SeriesHash::default();
    h.write(name.as_bytes());
    h.write(&[0xff]);
    for (k, v) in labels {
        h.write(k.as_bytes());
        h.write(&[0xfe]);
        h.write(v.as_bytes());
        h.write(&[0xff]);
    }
    h.finish()
}

/// Reads a push body into its metric families, in the order they first appear; families that
/// got a HELP or TYPE but no sample are dropped, as Prometheus drops them. An empty body has none.
///
/// `grouping` (from the push path, `job` first) is set on every sample, over any label of the
/// same name the sample carries. That is what the Pushgateway does: its README says such labels
/// "will be overwritten to match the labels defined by the URL path", its code does so in
/// `sanitizeLabels` (storage/diskmetricstore.go), and a maintainer calls it ruthless
/// (prometheus/client_ruby#186; only client_golang refuses the clash, in the client). Two samples
/// that end up the same series that way are a duplicate, which the Pushgateway refuses too
/// (prometheus/pushgateway#232).
pub fn parse(body: &[u8], grouping: &[(String, String)]) -> Result<Vec<Family>, ExpoError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        invalid(line, "the text is not UTF-8")
    })?;
    let mut reader = Reader {
        grouping,
        families: Vec::new(),
        typed: Vec::new(),
        current: usize::MAX,
        names: ByHash::default(),
        series: ByHash::default(),
    };
    for (i, line) in text.split('\n').enumerate() {
        reader.line(i + 1, line)?;
    }
    let mut families = reader.families;
    families.retain(|f| !f.samples.is_empty());
    Ok(families)
}

struct Reader<'g> {
    grouping: &'g [(String, String)],
    families: Vec<Family>,
    /// Whether each family had its TYPE line.
    typed: Vec<bool>,
    /// The family the last HELP, TYPE or sample line was about.
    current: usize,
    /// Families by the hash of their name.
    names: ByHash,
    /// Series by the hash of their name and labels.
    series: ByHash,
}

impl Reader<'_> {
    fn line(&mut self, n: usize, line: &str) -> Result<(), ExpoError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(invalid(
                n,
                format!("the line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let mut c = Cursor { s: line, at: 0 };
        c.blanks();
        match c.peek() {
            None => Ok(()),
            Some(b'#') => {
                c.at += 1;
                self.comment(n, c)
            }
            Some(_) => self.sample(n, c),
        }
    }

    /// `# HELP name text`, `# TYPE name type`, or any other comment (ignored). A HELP or TYPE
    /// line that stops after the name, or holds an empty text, is ignored too, as Prometheus does.
    fn comment(&mut self, n: usize, mut c: Cursor) -> Result<(), ExpoError> {
        c.blanks();
        let keyword = c.token();
        let help = keyword == "HELP";
        if !help && keyword != "TYPE" {
            return Ok(());
        }
        c.blanks();
        let name = c.name(true);
        if c.peek().is_none() {
            return Ok(());
        }
        if name.is_empty() || !c.blanks() {
            return Err(invalid(
                n,
                format!("a {keyword} line needs a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) and a blank after it"),
            ));
        }
        let f = self.family(name);
        if c.peek().is_none() {
            return Ok(());
        }
        self.current = f;
        let family = &mut self.families[f];
        if !family.samples.is_empty() {
            return Err(invalid(
                n,
                format!(
                    "the {keyword} line of {} comes after its samples; HELP and TYPE go first",
                    family.name
                ),
            ));
        }
        if help {
            if family.help.is_some() {
                return Err(invalid(
                    n,
                    format!("a second HELP line for {}", family.name),
                ));
            }
            family.help = Some(c.unescape(false).map_err(|e| invalid(n, e))?);
        } else {
            if self.typed[f] {
                return Err(invalid(
                    n,
                    format!("a second TYPE line for {}", family.name),
                ));
            }
            let text = c.rest().trim_end_matches([' ', '\t']);
            family.kind = Kind::parse(text).ok_or_else(|| {
                invalid(
                    n,
                    format!("unknown metric type {text:?}: the types are counter, gauge, histogram, summary and untyped"),
                )
            })?;
            self.typed[f] = true;
        }
        Ok(())
    }

    /// `name{label="value",...} value`, with no timestamp.
    fn sample(&mut self, n: usize, mut c: Cursor) -> Result<(), ExpoError> {
        let name = c.name(true);
        if name.is_empty() {
            return Err(invalid(
                n,
                "expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or a # comment",
            ));
        }
        c.blanks();
        let mut labels = Vec::new();
        if c.eat(b'{') {
            loop {
                c.blanks();
                if c.eat(b'}') {
                    break;
                }
                labels.push(label(n, &mut c)?);
                c.blanks();
                if !c.eat(b',') {
                    if c.eat(b'}') {
                        break;
                    }
                    return Err(invalid(n, "expected ',' or '}' after a label value"));
                }
            }
            c.blanks();
        }
        let text = c.token();
        let value = parse_float(text).ok_or_else(|| {
            invalid(
                n,
                format!("expected a number as the value, got {text:?} (NaN, +Inf, -Inf and 1.5e3 are numbers)"),
            )
        })?;
        c.blanks();
        if c.peek().is_some() {
            let after = c.rest();
            let ts = c.token();
            c.blanks();
            if ts.parse::<i64>().is_err() || c.peek().is_some() {
                return Err(invalid(n, format!("unexpected {after:?} after the value")));
            }
            return Err(ExpoError::new(
                n,
                Code::TimestampNotAllowed,
                format!("the sample carries a timestamp ({ts}); pushed samples take the time they arrive, as with the Pushgateway: drop it"),
            ));
        }
        self.add(n, name, labels, value)
    }

    /// Checks a sample against its family and the samples before it, and adds it.
    fn add(
        &mut self,
        n: usize,
        name: &str,
        mut labels: Vec<(String, String)>,
        value: f64,
    ) -> Result<(), ExpoError> {
        sort(&mut labels);
        if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(invalid(n, format!("the label {} is there twice", w[0].0)));
        }
        for (k, v) in self.grouping {
            match labels.binary_search_by(|(name, _)| name.as_str().cmp(k)) {
                Ok(i) => labels[i].1.clone_from(v),
                Err(i) => labels.insert(i, (k.clone(), v.clone())),
            }
        }
        let f = self.family(name);
        let family = &self.families[f];
        if let (true, Some(first)) = (f != self.current, family.samples.first()) {
            return Err(invalid(
                n,
                format!(
                    "the samples of {} must come together, but they began on line {} and other lines came between",
                    family.name, first.line
                ),
            ));
        }
        self.current = f;
        // The family's own name, or its name and a suffix (see `family`).
        let suffix = &name[family.name.len()..];
        let needs = match (family.kind, suffix) {
            (Kind::Histogram, "_bucket") => "le",
            (Kind::Summary, "") => "quantile",
            (Kind::Histogram, "") => {
                return Err(invalid(
                    n,
                    format!("{name} is a histogram: its samples are {name}_bucket, {name}_sum and {name}_count"),
                ))
            }
            _ => "",
        };
        if !needs.is_empty() {
            match labels.iter().find(|(k, _)| k == needs) {
                Some((_, v)) if parse_float(v).is_some() => {}
                Some((_, v)) => {
                    return Err(invalid(n, format!("{needs} must be a number, not {v:?}")))
                }
                None => {
                    return Err(invalid(
                        n,
                        format!(
                            "{name} needs a {needs} label ({} {})",
                            family.kind.as_str(),
                            family.name
                        ),
                    ))
                }
            }
        }
        let counts = matches!(
            (family.kind, suffix),
            (Kind::Counter, _)
                | (Kind::Histogram, "_bucket" | "_count")
                | (Kind::Summary, "_count")
        );
        if counts && value < 0.0 {
            return Err(invalid(
                n,
                format!("{name} is a count and cannot be negative ({value})"),
            ));
        }
        let key = hash_of(name, &labels);
        if self.series.insert(key, n).is_some() {
            // The same hash: the same series, or (rarely, or by design) another with that hash.
            let same = family
                .samples
                .iter()
                .find(|s| s.name == name && s.labels == labels);
            if let Some(s) = same {
                let mut series = String::new();
                push_series(&mut series, name, &labels);
                return Err(invalid(
                    n,
                    format!(
                        "{series} is there twice (first on line {}); each series once",
                        s.line
                    ),
                ));
            }
        }
        self.families[f].samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
            line: n,
        });
        Ok(())
    }

    /// The family a name belongs to, made if there is none, as Prometheus finds it: the family of
    /// that name, else the summary or histogram `x` for `x_sum` and `x_count` (and `x_bucket`,
    /// histograms only), else a new untyped family of that name.
    fn family(&mut self, name: &str) -> usize {
        if let Some(f) = self.find(name) {
            return f;
        }
        for (suffix, summary) in [("_count", true), ("_sum", true), ("_bucket", false)] {
            let base = name.strip_suffix(suffix).filter(|b| !b.is_empty());
            if let Some(f) = base.and_then(|b| self.find(b)) {
                match self.families[f].kind {
                    Kind::Histogram => return f,
                    Kind::Summary if summary => return f,
                    _ => {}
                }
            }
        }
        let f = self.families.len();
        self.names.entry(hash_of(name, &[])).or_insert(f);
        self.families.push(Family {
            name: name.to_string(),
            kind: Kind::Untyped,
            help: None,
            samples: Vec::new(),
        });
        self.typed.push(false);
        f
    }

    fn find(&self, name: &str) -> Option<usize> {
        match self.names.get(&hash_of(name, &[])) {
            Some(&f) if self.families[f].name == name => Some(f),
            // Another name with this hash came first: look at them all.
            Some(_) => self.families.iter().position(|f| f.name == name),
            None => None,
        }
    }
}

/// `name="value"` in a label set.
fn label(n: usize, c: &mut Cursor) -> Result<(String, String), ExpoError> {
    let name = c.name(false);
    if name.is_empty() {
        return Err(invalid(n, "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
    }
    if name.starts_with("__") {
        return Err(invalid(
            n,
            format!(
                "the label name {name} is reserved: names starting with __ are Prometheus' own"
            ),
        ));
    }
    c.blanks();
    if !c.eat(b'=') {
        return Err(invalid(
            n,
            format!("expected '=' after the label name {name}"),
        ));
    }
    c.blanks();
    if !c.eat(b'"') {
        return Err(invalid(
            n,
            format!("expected '\"' to open the value of the label {name}"),
        ));
    }
    let value = c.unescape(true).map_err(|e| invalid(n, e))?;
    if value.chars().count() > MAX_SAMPLE_LABEL_VALUE {
        return Err(invalid(
            n,
            format!(
                "the value of the label {name} is longer than {MAX_SAMPLE_LABEL_VALUE} characters"
            ),
        ));
    }
    Ok((name.to_string(), value))
}

/// Sorts labels by name: an insertion sort, since std's sort weighs kilobytes of wasm and a
/// sample has a handful of labels.
pub(crate) fn sort(labels: &mut [(String, String)]) {
    for i in 1..labels.len() {
        let at = labels[..i].partition_point(|p| p.0 <= labels[i].0);
        labels[at..=i].rotate_right(1);
    }
}

/// A position in one line.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    /// Bytes while `keep` says so. Every byte it stops at is ASCII, so slices stay on characters.
    fn take(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        &self.s[start..self.at]
    }

    /// Skips blanks and tabs, the only whitespace the format has within a line; whether any.
    fn blanks(&mut self) -> bool {
        !self.take(|b| b == b' ' || b == b'\t').is_empty()
    }

    fn token(&mut self) -> &'a str {
        self.take(|b| b != b' ' && b != b'\t')
    }

    /// A metric name (`colon`) or a label name, or "" when none starts here.
    fn name(&mut self, colon: bool) -> &'a str {
        let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || colon && b == b':';
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return "";
        }
        self.take(ok)
    }

    /// Text with the escapes `\\`, `\"` and `\n` (which Prometheus takes in HELP text and label
    /// values alike): up to a closing `"` (`quoted`, which it consumes) or to the end of the line.
    fn unescape(&mut self, quoted: bool) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let rest = self.rest();
            let Some(i) = rest.find(|c| c == '\\' || quoted && c == '"') else {
                if quoted {
                    return Err("a label value has no closing '\"'".into());
                }
                out.push_str(rest);
                self.at = self.s.len();
                return Ok(out);
            };
            out.push_str(&rest[..i]);
            self.at += i + 1;
            if rest.as_bytes()[i] == b'"' {
                return Ok(out);
            }
            match self.rest().chars().next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(c) => {
                    return Err(format!(
                        "\\{c} is not an escape: the escapes are \\\\, \\\" and \\n"
                    ))
                }
                None => return Err("the line ends in a lone \\".into()),
            }
            self.at += 1;
        }
    }
}

/// A number as Prometheus reads one (Go's `strconv.ParseFloat`, through the text parser): decimal
/// with an optional sign and exponent, `NaN`, and `Inf` or `Infinity` with an optional sign, in
/// any case. Not hex floats nor `_` (the text parser refuses `p` and `_`), nor a number too large
/// for a float (Go's range error).
pub fn parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    if !unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Writes families as the text format, each family once: families of the same name (the same
/// metric pushed by several groups) are written as one, with the first one's HELP and TYPE, as
/// the Pushgateway's `/metrics` merges them. Labels come sorted as the samples hold them.
pub fn render(families: &[Family], out: &mut String) {
    // For each family, the next one of the same name (usize::MAX: none); `last` for the first
    // of each name.
    let mut next = vec![usize::MAX; families.len()];
    let mut last = vec![usize::MAX; families.len()];
    let mut names = ByHash::default();
    for (i, f) in families.iter().enumerate() {
        let first = match names.get(&hash_of(&f.name, &[])) {
            Some(&j) if families[j].name == f.name => Some(j),
            Some(_) => families[..i].iter().position(|g| g.name == f.name),
            None => None,
        };
        match first {
            Some(j) => {
                next[last[j]] = i;
                last[j] = i;
            }
            None => {
                names.entry(hash_of(&f.name, &[])).or_insert(i);
                last[i] = i;
            }
        }
    }
    for (i, f) in families.iter().enumerate() {
        if last[i] == usize::MAX {
            continue;
        }
        if let Some(help) = f.help.as_deref().filter(|h| !h.is_empty()) {
            let _ = write!(out, "# HELP {} ", f.name);
            push_escaped(out, help, false);
            out.push('\n');
        }
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        let mut at = i;
        while at != usize::MAX {
            for s in &families[at].samples {
                push_series(out, &s.name, &s.labels);
                out.push(' ');
                push_value(out, s.value);
                out.push('\n');
            }
            at = next[at];
        }
    }
}

/// A series label as a Prometheus label name: pushplot's labels may hold characters Prometheus'
/// may not (`-`, `.`, any script), which become `_`, and `chart`, which `pushplot_value` uses
/// itself, becomes `exported_chart`, as Prometheus renames a clashing label.
pub fn label_name(name: &str) -> String {
    if name == "chart" {
        return "exported_chart".to_string();
    }
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || out.starts_with("__") {
        out.insert(0, 'l');
    }
    out
}

/// Whether a push fits beside the families that stay in `/metrics` with it, as the Pushgateway
/// checks a push against every group before it takes it (refusing what would break a scrape): a
/// metric has one type in every group, and no series comes from two groups (as when one group's
/// grouping label is a sample label in another: prometheus/pushgateway#232). `others` are every
/// other group's families and, for a POST, this group's own that the push does not replace; with
/// the families `/metrics` adds itself (`push_time_seconds`...), a push cannot clash with those.
pub fn check_against(push: &[Family], others: &[Family]) -> Result<(), ExpoError> {
    let mut series = ByHash::default();
    for s in others.iter().flat_map(|o| &o.samples) {
        series.insert(hash_of(&s.name, &s.labels), 0);
    }
    for f in push {
        let line = f.samples.first().map_or(1, |s| s.line);
        if let Some(o) = others.iter().find(|o| o.name == f.name && o.kind != f.kind) {
            return Err(invalid(
                line,
                format!(
                    "{} is a {} here but a {} in another group; a metric has one type",
                    f.name,
                    f.kind.as_str(),
                    o.kind.as_str()
                ),
            ));
        }
        for s in &f.samples {
            let mut others_samples = others.iter().flat_map(|o| &o.samples);
            if series.contains_key(&hash_of(&s.name, &s.labels))
                && others_samples.any(|o| o.name == s.name && o.labels == s.labels)
            {
                let mut text = String::new();
                push_series(&mut text, &s.name, &s.labels);
                return Err(invalid(
                    s.line,
                    format!("{text} is pushed by another group too; each series once"),
                ));
            }
        }
    }
    Ok(())
}

/// `name{a="1",b="2"}`, or `name` without labels.
fn push_series(out: &mut String, name: &str, labels: &[(String, String)]) {
    out.push_str(name);
    for (i, (k, v)) in labels.iter().enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        out.push_str(k);
        out.push_str("=\"");
        push_escaped(out, v, true);
        out.push('"');
    }
    if !labels.is_empty() {
        out.push('}');
    }
}

/// Escapes `\` and line feeds, and `"` in a label value (`quoted`), as Prometheus writes them.
fn push_escaped(out: &mut String, s: &str, quoted: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quoted => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Writes a value as Prometheus does (`writeFloat` in expfmt: `NaN`, `+Inf`, `-Inf`, `0` for
/// either zero, else Go's `strconv.FormatFloat(v, 'g', -1, 64)`): the shortest digits that read
/// back to the same float, with an exponent (`1e+06`, `2.5e-05`) when it is below -4 or from 6 up.
pub fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        return out.push_str("NaN");
    }
    if v.is_infinite() {
        return out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    }
    if v == 0.0 {
        return out.push('0');
    }
    // Rust's shortest round-trip digits, as `-1.2345e-7`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "{mantissa}e{sign}{:02}", exp.unsigned_abs());
        return;
    }
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    if negative {
        out.push('-');
    }
    let (head, tail) = digits.split_once('.').unwrap_or((digits, ""));
    if exp < 0 {
        out.push_str("0.");
        for _ in 1..-exp {
            out.push('0');
        }
        out.push_str(head);
        out.push_str(tail);
        return;
    }
    let whole = exp as usize;
    out.push_str(head);
    out.push_str(&tail[..whole.min(tail.len())]);
    for _ in tail.len()..whole {
        out.push('0');
    }
    if tail.len() > whole {
        out.push('.');
        out.push_str(&tail[whole..]);
    }
}

/// The points a push charts.
#[derive(Debug, Clone, PartialEq)]
pub struct Charted {
    /// One point per charted sample, at `now`, as `Batch::parse` builds points sent as JSON: chart
    /// = the sample's name, labels = its labels (the grouping labels among them). It may hold no
    /// point at all (an empty push, or nothing chartable).
    pub batch: Batch,
    /// Samples kept for `/metrics` but not charted, because pushplot stores only finite values
    /// within ±MAX_VALUE: NaN, ±Inf, and beyond that range.
    pub skipped: usize,
}

/// The points to chart from a push's families (read by `parse`, grouping labels set). The
/// `_created` gauges that client_python adds beside each counter, histogram and summary (their
/// creation time in unix seconds, the same for the life of the process) are not charted: a chart
/// of a constant says nothing, and each would count against the key's charts. They are not counted
/// as skipped; they stay in the families for `/metrics`.
///
/// A sample name that is no chart name (over 128 characters) or labels beyond pushplot's limits
/// (more than 10, a name over 64, a value with control characters) are errors naming the line, as
/// is a push of more than MAX_BATCH chartable samples.
pub fn chart(families: &[Family], cfg: &Config, now: f64) -> Result<Charted, ExpoError> {
    let ts = Timestamp::from_secs(now);
    let mut series = Vec::new();
    let mut skipped = 0;
    for f in families.iter().filter(|f| !is_created(f, families)) {
        for s in &f.samples {
            let Ok(value) = Value::parse(s.value, cfg.max_value) else {
                skipped += 1;
                continue;
            };
            let refuse = |e: ApiError| ExpoError::new(s.line, e.code, e.message);
            if series.len() == cfg.max_batch as usize {
                return Err(ExpoError::new(
                    s.line,
                    Code::BatchTooLarge,
                    format!(
                        "more than {} samples to chart in one push; split it",
                        cfg.max_batch
                    ),
                ));
            }
            series.push(SeriesPoints {
                chart: ChartName::parse(&s.name).map_err(refuse)?,
                labels: Labels::from_pairs(&s.labels).map_err(refuse)?,
                points: vec![(ts, value)],
                aggregates: Vec::new(),
            });
        }
    }
    Ok(Charted {
        batch: Batch {
            len: series.len(),
            series,
        },
        skipped,
    })
}

/// Whether `f` is `x_created` beside a counter `x_total` (or `x`), a histogram `x` or a summary `x`.
fn is_created(f: &Family, families: &[Family]) -> bool {
    let Some(base) = f.name.strip_suffix("_created") else {
        return false;
    };
    families.iter().any(|g| match g.kind {
        Kind::Counter => g.name.strip_suffix("_total").unwrap_or(&g.name) == base,
        Kind::Histogram | Kind::Summary => g.name == base,
        Kind::Gauge | Kind::Untyped => false,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn series_labels_become_prometheus_label_names() {
        assert_eq!(super::label_name("host"), "host");
        assert_eq!(super::label_name("host-name.eu"), "host_name_eu");
        assert_eq!(super::label_name("9lives"), "l9lives");
        assert_eq!(super::label_name("__x"), "l__x");
        assert_eq!(super::label_name("chart"), "exported_chart");
        assert_eq!(super::label_name("ключ"), "l____");
    }

    use super::*;

    fn read(body: &str) -> Vec<Family> {
        parse(body.as_bytes(), &[]).unwrap()
    }

    fn refused(body: &str) -> ExpoError {
        parse(body.as_bytes(), &[]).unwrap_err()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rendered(families: &[Family]) -> String {
        let mut out = String::new();
        render(families, &mut out);
        out
    }

    fn value(v: f64) -> String {
        let mut out = String::new();
        push_value(&mut out, v);
        out
    }

    #[test]
    fn a_body_with_help_type_and_samples_reads_into_families() {
        let f = read(
            "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total{result=\"ok\"} 3\njobs_total{result=\"failed\"} 1\nqueue_depth 17\n",
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "jobs_total");
        assert_eq!(f[0].kind, Kind::Counter);
        assert_eq!(f[0].help.as_deref(), Some("Jobs run."));
        assert_eq!(f[0].samples[1].labels, pairs(&[("result", "failed")]));
        assert_eq!(f[0].samples[1].line, 4);
        assert_eq!(f[1].name, "queue_depth");
        assert_eq!(f[1].kind, Kind::Untyped);
        assert_eq!(f[1].help, None);
        assert_eq!(f[1].samples[0].value, 17.0);
    }

    #[test]
    fn help_text_unescapes_backslash_newline_and_quote_and_keeps_other_quotes() {
        let f = read("# HELP x a \\\\ b\\nc \\\"d\\\" \"e\"\nx 1\n");
        assert_eq!(f[0].help.as_deref(), Some("a \\ b\nc \"d\" \"e\""));
    }

    #[test]
    fn label_values_unescape_backslash_quote_and_newline() {
        let f = read("x{path=\"C:\\\\tmp\",say=\"\\\"hi\\\"\",two=\"a\\nb\",u=\"注册 ✓\"} 1\n");
        assert_eq!(
            f[0].samples[0].labels,
            pairs(&[
                ("path", "C:\\tmp"),
                ("say", "\"hi\""),
                ("two", "a\nb"),
                ("u", "注册 ✓")
            ])
        );
    }

    #[test]
    fn an_unknown_escape_or_an_unclosed_value_is_an_error_naming_its_line() {
        let e = refused("x 1\ny{a=\"\\t\"} 2\n");
        assert_eq!((e.line, e.code), (2, Code::InvalidExposition));
        assert!(e.message.contains("\\t is not an escape"), "{}", e.message);
        assert!(refused("# HELP x a \\q\n").message.contains("\\q"));
        assert!(refused("# HELP x ends \\").message.contains("lone"));
        assert_eq!(refused("x 1\n\nx{a=\"open} 1\n").line, 3);
    }

    #[test]
    fn a_trailing_comma_in_a_label_set_is_fine_and_so_is_an_empty_set() {
        let f = read("x{a=\"1\",} 1\ny{} 2\n");
        assert_eq!(f[0].samples[0].labels, pairs(&[("a", "1")]));
        assert!(f[1].samples[0].labels.is_empty());
        for bad in [
            "z{,} 1",
            "z{a=\"1\",,} 1",
            "z{a=\"1\" b=\"2\"} 1",
            "z{a} 1",
            "z{a=1} 1",
        ] {
            assert_eq!(refused(bad).code, Code::InvalidExposition, "{bad}");
        }
    }

    #[test]
    fn blanks_and_tabs_are_taken_where_prometheus_takes_them() {
        let f = read(" \t x \t{ a = \"1\" ,\tb=\"2\" } \t 5 \t\n#\tTYPE\ty\tgauge\ny{c=\"3\"}6\n");
        assert_eq!(f[0].samples[0].labels, pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(f[0].samples[0].value, 5.0);
        assert_eq!(f[1].kind, Kind::Gauge);
        assert_eq!(f[1].samples[0].value, 6.0);
    }

    #[test]
    fn values_read_as_gos_parse_float_reads_them() {
        for (text, v) in [
            ("1", 1.0),
            ("-2.5", -2.5),
            ("+3", 3.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1.5E-3", 0.0015),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("Inf", f64::INFINITY),
            ("inf", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("1e-400", 0.0),
        ] {
            assert_eq!(parse_float(text), Some(v), "{text}");
        }
        assert!(parse_float("NaN").unwrap().is_nan());
        assert!(parse_float("nan").unwrap().is_nan());
        for text in [
            "", "+", ".", "e3", "1e", "abc", "+nan", "-NaN", "0x1p3", "0x10", "1_000", "1e400",
            "-1e400", "1,5", "infinit", "--1", "1.2.3",
        ] {
            assert_eq!(parse_float(text), None, "{text}");
        }
        assert!(refused("x one\n").message.contains("\"one\""));
        assert!(refused("x\n").message.contains("expected a number"));
    }

    #[test]
    fn a_sample_with_a_timestamp_is_refused_as_the_pushgateway_refuses_it() {
        let e = refused("x 1\ny 2 1763800000000\n");
        assert_eq!((e.line, e.code), (2, Code::TimestampNotAllowed));
        assert!(e.message.contains("timestamp"), "{}", e.message);
        let api = ApiError::from(e);
        assert_eq!(api.status, 400);
        assert_eq!(api.code, "timestamp_not_allowed");
        assert!(api.message.starts_with("line 2: "), "{}", api.message);
    }

    #[test]
    fn text_after_the_value_that_is_no_timestamp_is_a_syntax_error() {
        for bad in ["x 1 2.5", "x 1 abc", "x 1 123 extra"] {
            let e = refused(bad);
            assert_eq!(e.code, Code::InvalidExposition, "{bad}");
            assert!(e.message.contains("after the value"), "{}", e.message);
        }
    }

    #[test]
    fn metric_and_label_names_follow_the_prometheus_grammar() {
        let f = read("a:b_c9 1\n_x{_y=\"1\",Z9=\"2\"} 2\n");
        assert_eq!(f[0].name, "a:b_c9");
        for bad in [
            "9x 1",
            "-x 1",
            "{__name__=\"x\"} 1",
            "x{a:b=\"1\"} 1",
            "x{9a=\"1\"} 1",
            "x{__name__=\"y\"} 1",
            "x{__meta=\"y\"} 1",
            "x{a-b=\"1\"} 1",
            "# TYPE 9x gauge",
            "# HELP x-y text",
        ] {
            assert_eq!(refused(bad).code, Code::InvalidExposition, "{bad}");
        }
        assert!(refused("x{__a=\"1\"} 1").message.contains("reserved"));
    }

    #[test]
    fn a_repeated_type_or_help_is_refused() {
        let e = refused("# TYPE x gauge\n# TYPE x gauge\nx 1\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("second TYPE"), "{}", e.message);
        let e = refused("# HELP x a\n# TYPE x gauge\n# HELP x b\nx 1\n");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("second HELP"), "{}", e.message);
    }

    #[test]
    fn a_type_or_help_after_the_familys_samples_is_refused() {
        for (body, keyword) in [
            ("x 1\n# TYPE x gauge\n", "TYPE"),
            ("x 1\n# HELP x late\n", "HELP"),
        ] {
            let e = refused(body);
            assert_eq!(e.line, 2);
            assert!(
                e.message.contains(keyword) && e.message.contains("after its samples"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn a_help_or_type_line_without_text_is_ignored_as_prometheus_ignores_it() {
        let f = read("# HELP x\n# TYPE x\n# HELP x \n# TYPE x gauge\nx 1\n");
        assert_eq!((f[0].kind, f[0].help.clone()), (Kind::Gauge, None));
    }

    #[test]
    fn the_samples_of_one_family_must_come_together() {
        let e = refused("a 1\nb 2\na{x=\"1\"} 3\n");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("began on line 1"), "{}", e.message);
        // A HELP for another metric also parts them.
        assert_eq!(refused("a 1\n# HELP b b\na{x=\"1\"} 3\n").line, 3);
        // A family declared early may get its samples later.
        let f = read("# TYPE a gauge\n# TYPE b gauge\nb 1\na 2\n");
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn a_duplicate_series_is_refused_naming_both_lines() {
        let e = refused("x{a=\"1\",b=\"2\"} 1\nx{a=\"2\"} 2\n\nx{b=\"2\",a=\"1\"} 3\n");
        assert_eq!(e.line, 4);
        assert!(
            e.message.contains("x{a=\"1\",b=\"2\"}") && e.message.contains("line 1"),
            "{}",
            e.message
        );
        assert_eq!(refused("x 1\nx 2\n").line, 2);
    }

    #[test]
    fn a_label_named_twice_in_one_sample_is_refused() {
        let e = refused("x{a=\"1\",a=\"2\"} 1\n");
        assert!(
            e.message.contains("label a is there twice"),
            "{}",
            e.message
        );
    }

    #[test]
    fn histogram_and_summary_samples_belong_to_the_family_their_type_declares() {
        let f = read(concat!(
            "# TYPE h histogram\n",
            "h_bucket{le=\"0.5\"} 1\n",
            "h_bucket{le=\"+Inf\"} 2\n",
            "h_sum 1.5\n",
            "h_count 2\n",
            "# TYPE s summary\n",
            "s{quantile=\"0.9\"} 4\n",
            "s_sum 9\n",
            "s_count 3\n",
        ));
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].kind, f[0].samples.len()), (Kind::Histogram, 4));
        assert_eq!(f[0].samples[2].name, "h_sum");
        assert_eq!((f[1].kind, f[1].samples.len()), (Kind::Summary, 3));
    }

    #[test]
    fn sum_and_count_without_a_declared_histogram_or_summary_are_their_own_untyped_families() {
        let f = read("h_sum 1\nh_count 2\n# TYPE g gauge\ng_count 3\ns_bucket{le=\"1\"} 1\n");
        let names: Vec<_> = f.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("h_sum", Kind::Untyped),
                ("h_count", Kind::Untyped),
                ("g_count", Kind::Untyped),
                ("s_bucket", Kind::Untyped)
            ]
        );
        // A summary has no buckets: s_bucket is its own family, and then s's samples are apart.
        let f = read("# TYPE s summary\ns_bucket{le=\"1\"} 1\n");
        assert_eq!((f[0].name.as_str(), f[0].kind), ("s_bucket", Kind::Untyped));
        // A TYPE for x_count resolves to a summary x already declared, as in Prometheus.
        assert!(refused("# TYPE x summary\n# TYPE x_count gauge\n")
            .message
            .contains("second TYPE line for x"));
    }

    #[test]
    fn a_bucket_without_le_or_a_quantile_sample_without_quantile_is_refused() {
        let e = refused("# TYPE h histogram\nh_bucket{a=\"1\"} 1\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("needs a le label"), "{}", e.message);
        let e = refused("# TYPE s summary\ns_sum 1\ns 2\n");
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("needs a quantile label"),
            "{}",
            e.message
        );
    }

    #[test]
    fn le_and_quantile_must_be_numbers() {
        assert!(refused("# TYPE h histogram\nh_bucket{le=\"big\"} 1\n")
            .message
            .contains("le must be a number"));
        assert!(refused("# TYPE s summary\ns{quantile=\"\"} 1\n")
            .message
            .contains("quantile must be a number"));
    }

    #[test]
    fn a_histogram_sample_without_a_suffix_is_refused() {
        let e = refused("# TYPE h histogram\nh{le=\"1\"} 1\n");
        assert!(
            e.message.contains("h_bucket, h_sum and h_count"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_negative_counter_or_count_is_refused_but_a_negative_gauge_is_fine() {
        for body in [
            "# TYPE c counter\nc -1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} -1\n",
            "# TYPE h histogram\nh_count -2\n",
            "# TYPE s summary\ns_count -0.5\n",
        ] {
            let e = refused(body);
            assert_eq!(e.line, 2, "{body}");
            assert!(e.message.contains("cannot be negative"), "{}", e.message);
        }
        read("# TYPE g gauge\ng -1\nu -2\n# TYPE h histogram\nh_sum -3\n# TYPE c counter\nc NaN\n");
    }

    #[test]
    fn types_are_read_in_any_case_and_an_unknown_type_is_refused() {
        assert_eq!(read("# TYPE x COUNTER\nx 1\n")[0].kind, Kind::Counter);
        assert_eq!(read("# TYPE x Gauge  \nx 1\n")[0].kind, Kind::Gauge);
        let e = refused("# TYPE x gaugehistogram\n");
        assert!(e.message.contains("unknown metric type"), "{}", e.message);
    }

    #[test]
    fn other_comments_and_blank_lines_are_ignored() {
        let f = read("# a comment\n#\n\n   \n# HELPx y\n#EOF\nx 1\n\n");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].samples[0].line, 7);
        assert_eq!(
            read("#HELP x no blank after the hash\nx 1\n")[0]
                .help
                .as_deref(),
            Some("no blank after the hash")
        );
    }

    #[test]
    fn families_with_only_help_and_type_are_dropped_and_an_empty_body_has_none() {
        assert!(read("").is_empty());
        assert!(read("\n\n").is_empty());
        let f = read("# HELP a nothing\n# TYPE a gauge\n# TYPE b counter\nb 1\n");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "b");
    }

    #[test]
    fn the_last_line_needs_no_line_feed() {
        assert_eq!(read("x 1")[0].samples[0].value, 1.0);
        assert_eq!(read("x 1 \t")[0].samples[0].value, 1.0);
    }

    #[test]
    fn a_line_or_a_label_value_over_its_limit_is_refused() {
        let long = format!("# {}\nx 1\n", "c".repeat(MAX_LINE_BYTES));
        let e = refused(&long);
        assert_eq!(e.line, 1);
        assert!(
            e.message.contains("longer than 4096 bytes"),
            "{}",
            e.message
        );
        read(&format!("# {}\nx 1\n", "c".repeat(MAX_LINE_BYTES - 2)));
        let v = "é".repeat(MAX_SAMPLE_LABEL_VALUE);
        read(&format!("x{{a=\"{v}\"}} 1\n"));
        let e = refused(&format!("x{{a=\"{v}e\"}} 1\n"));
        assert!(
            e.message.contains("longer than 128 characters"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_naming_the_line() {
        let e = parse(b"x 1\ny{a=\"\xff\"} 2\n", &[]).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("UTF-8"));
    }

    #[test]
    fn grouping_labels_are_set_on_every_sample_over_its_own_as_the_pushgateway_does() {
        let grouping = pairs(&[("job", "backup"), ("instance", "db1")]);
        let f = parse(b"x{job=\"other\",z=\"1\"} 1\ny 2\n", &grouping).unwrap();
        assert_eq!(
            f[0].samples[0].labels,
            pairs(&[("instance", "db1"), ("job", "backup"), ("z", "1")])
        );
        assert_eq!(
            f[1].samples[0].labels,
            pairs(&[("instance", "db1"), ("job", "backup")])
        );
    }

    #[test]
    fn samples_that_differ_only_in_a_grouping_label_become_one_series_and_are_refused() {
        let grouping = pairs(&[("job", "backup")]);
        let e = parse(b"x{job=\"a\"} 1\nx{job=\"b\"} 2\n", &grouping).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message.contains("x{job=\"backup\"} is there twice"),
            "{}",
            e.message
        );
    }

    #[test]
    fn floats_are_written_as_prometheus_writes_them() {
        for (v, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (3.0, "3"),
            (1.5, "1.5"),
            (13.8, "13.8"),
            (100000.0, "100000"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (123456789.0, "1.23456789e+08"),
            (1.76380000025e9, "1.76380000025e+09"),
            (0.0001, "0.0001"),
            (0.000123, "0.000123"),
            (0.00001, "1e-05"),
            (-2.25e-7, "-2.25e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(value(v), text, "{v:e}");
            let back = parse_float(text).unwrap();
            assert!(back == v || back.is_nan() && v.is_nan(), "{text}");
        }
    }

    #[test]
    fn families_render_with_help_type_sorted_labels_and_escapes() {
        let f = parse(
            "# TYPE x gauge\n# HELP x say \\\"hi\\\" \\\\ to\\nall\nx{z=\"1\",a=\"q\\\"\\\\\\n\"} 0.5\nx 2\ny +Inf\n".as_bytes(),
            &[],
        )
        .unwrap();
        assert_eq!(
            rendered(&f),
            "# HELP x say \"hi\" \\\\ to\\nall\n# TYPE x gauge\nx{a=\"q\\\"\\\\\\n\",z=\"1\"} 0.5\nx 2\n# TYPE y untyped\ny +Inf\n"
        );
    }

    #[test]
    fn families_of_one_name_from_several_groups_render_as_one() {
        let a = parse(
            b"# HELP up From a.\n# TYPE up gauge\nup 1\nother 5\n",
            &pairs(&[("job", "a")]),
        )
        .unwrap();
        let b = parse(
            b"# HELP up From b.\n# TYPE up gauge\nup 0\n",
            &pairs(&[("job", "b")]),
        )
        .unwrap();
        let all: Vec<Family> = a.into_iter().chain(b).collect();
        let text = rendered(&all);
        assert_eq!(
            text,
            "# HELP up From a.\n# TYPE up gauge\nup{job=\"a\"} 1\nup{job=\"b\"} 0\n# TYPE other untyped\nother{job=\"a\"} 5\n"
        );
        assert_eq!(read(&text).len(), 2);
    }

    #[test]
    fn what_is_rendered_reads_back_to_the_same_families() {
        let body = concat!(
            "# HELP h Timings \\\\ with a\\nnewline.\n",
            "# TYPE h histogram\n",
            "h_bucket{le=\"0.1\",path=\"/a \\\"b\\\"\"} 0\n",
            "h_bucket{le=\"+Inf\",path=\"/a \\\"b\\\"\"} 3\n",
            "h_sum{path=\"/a \\\"b\\\"\"} 1.25e-07\n",
            "h_count{path=\"/a \\\"b\\\"\"} 3\n",
            "# TYPE s summary\n",
            "s{quantile=\"0.5\"} NaN\n",
            "s_count 0\n",
            "g -Inf\n",
            "c_total 123456789012\n",
        );
        let f = read(body);
        assert_eq!(read(&rendered(&f)), f);
        assert_eq!(rendered(&read(&rendered(&f))), rendered(&f));
    }

    #[test]
    fn samples_are_equal_whatever_line_they_came_from_and_nan_equals_nan() {
        let a = read("x NaN\n");
        let b = read("\n\nx NaN\n");
        assert_eq!(a, b);
        assert_ne!(read("x 1\n"), read("x 2\n"));
    }

    #[test]
    fn errors_become_api_errors_with_their_code_and_line() {
        let e: ApiError = refused("x 1\nx 1\n").into();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_exposition"));
        assert!(
            e.message.starts_with("line 2: x is there twice"),
            "{}",
            e.message
        );
        assert_eq!(e.index, None);
    }

    /// What client_python's `generate_latest` writes (prometheus/client_python at v0.25.0-14,
    /// run with time.time pinned to 1763800000.25) for a registry holding a counter with a label,
    /// a gauge whose HELP has a newline, quotes and a backslash, a histogram with the default
    /// buckets and a summary: every `push_to_gateway` sends this.
    const PYTHON_CLIENT: &str = r#"# HELP backup_runs_total Backups run, by result.
# TYPE backup_runs_total counter
backup_runs_total{result="ok"} 3.0
backup_runs_total{result="failed"} 1.0
# HELP backup_runs_created Backups run, by result.
# TYPE backup_runs_created gauge
backup_runs_created{result="ok"} 1.76380000025e+09
backup_runs_created{result="failed"} 1.76380000025e+09
# HELP backup_last_size_bytes Size of the last backup.\nIn bytes, "raw" \\ uncompressed.
# TYPE backup_last_size_bytes gauge
backup_last_size_bytes 1.23456789e+08
# HELP backup_duration_seconds How long a backup took.
# TYPE backup_duration_seconds histogram
backup_duration_seconds_bucket{le="0.005"} 0.0
backup_duration_seconds_bucket{le="0.01"} 0.0
backup_duration_seconds_bucket{le="0.025"} 0.0
backup_duration_seconds_bucket{le="0.05"} 0.0
backup_duration_seconds_bucket{le="0.075"} 0.0
backup_duration_seconds_bucket{le="0.1"} 0.0
backup_duration_seconds_bucket{le="0.25"} 0.0
backup_duration_seconds_bucket{le="0.5"} 1.0
backup_duration_seconds_bucket{le="0.75"} 1.0
backup_duration_seconds_bucket{le="1.0"} 1.0
backup_duration_seconds_bucket{le="2.5"} 2.0
backup_duration_seconds_bucket{le="5.0"} 2.0
backup_duration_seconds_bucket{le="7.5"} 2.0
backup_duration_seconds_bucket{le="10.0"} 2.0
backup_duration_seconds_bucket{le="+Inf"} 3.0
backup_duration_seconds_count 3.0
backup_duration_seconds_sum 13.8
# HELP backup_duration_seconds_created How long a backup took.
# TYPE backup_duration_seconds_created gauge
backup_duration_seconds_created 1.76380000025e+09
# HELP backup_files Files per backup.
# TYPE backup_files summary
backup_files_count 2.0
backup_files_sum 150.5
# HELP backup_files_created Files per backup.
# TYPE backup_files_created gauge
backup_files_created 1.76380000025e+09
"#;

    fn cfg() -> Config {
        Config::default()
    }

    fn charts(c: &Charted) -> Vec<(String, String, f64)> {
        c.batch
            .series
            .iter()
            .map(|s| {
                (
                    s.chart.to_string(),
                    s.labels.canonical(),
                    s.points[0].1.get(),
                )
            })
            .collect()
    }

    #[test]
    fn python_clients_text_reads_with_its_created_gauges_as_families_of_their_own() {
        let grouping = pairs(&[("job", "backup")]);
        let f = parse(PYTHON_CLIENT.as_bytes(), &grouping).unwrap();
        let kinds: Vec<_> = f
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.samples.len()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("backup_runs_total", Kind::Counter, 2),
                ("backup_runs_created", Kind::Gauge, 2),
                ("backup_last_size_bytes", Kind::Gauge, 1),
                ("backup_duration_seconds", Kind::Histogram, 17),
                ("backup_duration_seconds_created", Kind::Gauge, 1),
                ("backup_files", Kind::Summary, 2),
                ("backup_files_created", Kind::Gauge, 1),
            ]
        );
        assert_eq!(
            f[2].help.as_deref(),
            Some("Size of the last backup.\nIn bytes, \"raw\" \\ uncompressed.")
        );
        assert_eq!(
            f[3].samples[14].labels,
            pairs(&[("job", "backup"), ("le", "+Inf")])
        );
        assert_eq!(f[3].samples[16].value, 13.8);
        assert_eq!(read(&rendered(&f)), f);
    }

    #[test]
    fn python_clients_push_charts_every_sample_but_the_created_gauges() {
        let f = parse(PYTHON_CLIENT.as_bytes(), &pairs(&[("job", "backup")])).unwrap();
        let c = chart(&f, &cfg(), 1763800100.0).unwrap();
        assert_eq!((c.batch.len, c.skipped), (2 + 1 + 17 + 2, 0));
        let got = charts(&c);
        assert_eq!(
            got[0],
            (
                "backup_runs_total".into(),
                r#"{"job":"backup","result":"ok"}"#.into(),
                3.0
            )
        );
        assert_eq!(
            got[2],
            (
                "backup_last_size_bytes".into(),
                r#"{"job":"backup"}"#.into(),
                123456789.0
            )
        );
        assert_eq!(
            got[17],
            (
                "backup_duration_seconds_bucket".into(),
                r#"{"job":"backup","le":"+Inf"}"#.into(),
                3.0
            )
        );
        assert_eq!(
            got[21],
            (
                "backup_files_sum".into(),
                r#"{"job":"backup"}"#.into(),
                150.5
            )
        );
        assert!(got.iter().all(|(chart, _, _)| !chart.ends_with("_created")));
        assert!(c
            .batch
            .series
            .iter()
            .all(|s| s.points[0].0.secs() == 1763800100.0));
    }

    #[test]
    fn a_gauge_named_created_without_a_counter_histogram_or_summary_beside_it_is_charted() {
        let f = read(
            "# TYPE users_created gauge\nusers_created 12\n# TYPE x gauge\nx 1\nx_created 5\n",
        );
        assert_eq!(chart(&f, &cfg(), 0.0).unwrap().batch.len, 3);
        let f = read(
            "# TYPE x counter\nx 1\nx_created 5\n# TYPE y_total counter\ny_total 1\ny_created 5\n",
        );
        assert_eq!(charts(&chart(&f, &cfg(), 0.0).unwrap()).len(), 2);
    }

    #[test]
    fn nan_inf_and_values_beyond_max_value_stay_in_the_families_but_are_not_charted() {
        let f = read("a NaN\nb +Inf\nc -Inf\nd 2e9\ne -2e9\nf 1e9\ng 5\n");
        let c = chart(&f, &cfg(), 0.0).unwrap();
        assert_eq!(c.skipped, 5);
        let got: Vec<_> = charts(&c)
            .into_iter()
            .map(|(chart, _, v)| (chart, v))
            .collect();
        assert_eq!(got, [("f".to_string(), 1e9), ("g".to_string(), 5.0)]);
        assert_eq!(f.len(), 7);
    }

    #[test]
    fn every_sample_is_a_point_of_the_chart_its_name_says_with_the_push_labels() {
        let f = parse(
            b"# TYPE q gauge\nq{queue=\"mail\"} 4\nq{queue=\"sms\"} 0\n",
            &pairs(&[("job", "sender"), ("instance", "a")]),
        )
        .unwrap();
        let got = charts(&chart(&f, &cfg(), 0.0).unwrap());
        assert_eq!(
            got,
            [
                (
                    "q".into(),
                    r#"{"instance":"a","job":"sender","queue":"mail"}"#.into(),
                    4.0
                ),
                (
                    "q".into(),
                    r#"{"instance":"a","job":"sender","queue":"sms"}"#.into(),
                    0.0
                ),
            ]
        );
        let empty = chart(&[], &cfg(), 0.0).unwrap();
        assert_eq!(
            (empty.batch.len, empty.batch.series.len(), empty.skipped),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_name_too_long_for_a_chart_or_labels_beyond_pushplots_limits_are_errors_naming_the_line() {
        let long = format!("ok 1\n{} 1\n", "m".repeat(129));
        let e = chart(&read(&long), &cfg(), 0.0).unwrap_err();
        assert_eq!((e.line, e.code), (2, Code::InvalidChart));
        let labels: Vec<String> = (0..11).map(|i| format!("l{i}=\"x\"")).collect();
        let e = chart(
            &read(&format!("\nx{{{}}} 1\n", labels.join(","))),
            &cfg(),
            0.0,
        )
        .unwrap_err();
        assert_eq!((e.line, e.code), (2, Code::InvalidLabels));
        let e = chart(
            &read("x{a=\"tab\\there\"} 1\n".replace("\\t", "\t").as_str()),
            &cfg(),
            0.0,
        )
        .unwrap_err();
        assert_eq!((e.line, e.code), (1, Code::InvalidLabels));
        let e = chart(&read("x{a=\"two\\nlines\"} 1\n"), &cfg(), 0.0).unwrap_err();
        assert!(ApiError::from(e).message.starts_with("line 1: label 'a'"));
        // Not chartable, but a valid push: it stays readable for /metrics.
        assert_eq!(
            read(&format!("x{{{}}} 1\n", labels.join(",")))[0].samples[0]
                .labels
                .len(),
            11
        );
    }

    #[test]
    fn more_chartable_samples_than_max_batch_are_refused_naming_the_first_line_past_it() {
        let cfg = Config {
            max_batch: 3,
            ..Config::default()
        };
        let f = read("a 1\nb NaN\nc 2\nd 3\ne 4\n");
        let e = chart(&f, &cfg, 0.0).unwrap_err();
        assert_eq!((e.line, e.code), (5, Code::BatchTooLarge));
        assert_eq!(ApiError::from(e).status, 413);
        assert_eq!(chart(&f[..4], &cfg, 0.0).unwrap().batch.len, 3);
    }

    /// xorshift64: the same inputs on every run, so that a failure replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Valid bodies that the fuzz loop starts from.
    const SEEDS: &[&str] = &[
        PYTHON_CLIENT,
        "# HELP x say \\\"hi\\\" \\\\ to\\nall\n# TYPE x gauge\nx{z=\"1\",a=\"q\\\"\\\\\\n\"} 0.5\nx 2\ny +Inf\n",
        "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n# TYPE s summary\ns{quantile=\"0.9\"} 4\ns_sum 9\ns_count 3\n",
        "a:b{c=\"注册\",d=\"\"} -1.5e-7\n_x NaN\nc_total{job=\"j\"} 12\n",
        "x{a=\"1\",} 1\n\n# comment\n  y \t{ b = \"2\" } 3",
    ];

    /// Pieces of the format that mutations put in.
    const PIECES: &[&str] = &[
        "{",
        "}",
        "\"",
        "\\",
        "\\n",
        "\n",
        " ",
        "\t",
        "#",
        "# HELP x ",
        "# TYPE x ",
        "=",
        ",",
        "le",
        "quantile",
        "_bucket",
        "_sum",
        "_count",
        "_total",
        "_created",
        "NaN",
        "+Inf",
        "-Inf",
        "1e3",
        "-1",
        "0x1p3",
        " 1763800000000",
        "é",
        "注",
        "\0",
        "\r",
        "__",
        ":",
        "9",
        "gauge",
        "counter",
        "histogram",
        "summary",
        "untyped",
        "job",
        "x",
        "x{a=\"1\"} 1\n",
    ];

    fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
        let at = rng.below(body.len() + 1);
        let piece = PIECES[rng.below(PIECES.len())].as_bytes();
        match rng.below(6) {
            0 if at < body.len() => body[at] = rng.next() as u8,
            1 => {
                body.splice(at..at, piece.iter().copied());
            }
            2 => {
                let end = (at + 1 + rng.below(8)).min(body.len());
                body.drain(at.min(end)..end);
            }
            3 | 4 => {
                // A whole line copied, or moved, elsewhere.
                let lines: Vec<Vec<u8>> = body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let line = rng.below(lines.len());
                let mut lines = lines;
                let moved = if rng.below(2) == 0 {
                    lines[line].clone()
                } else {
                    lines.remove(line)
                };
                let to = rng.below(lines.len() + 1);
                lines.insert(to, moved);
                *body = lines.join(&b'\n');
            }
            _ => {
                let end = (at + rng.below(4)).min(body.len());
                body.splice(at..end, piece.iter().copied());
            }
        }
    }

    /// Reads a body that must not panic; when it reads, what it renders reads back the same.
    fn check_round_trip(body: &[u8], grouping: &[(String, String)], round: usize) -> bool {
        match parse(body, grouping) {
            Ok(families) => {
                for s in families.iter().flat_map(|f| &f.samples) {
                    assert!(
                        s.labels.windows(2).all(|w| w[0].0 < w[1].0),
                        "round {round}"
                    );
                    assert!(
                        grouping.iter().all(|g| s.labels.contains(g)),
                        "round {round}"
                    );
                }
                let text = rendered(&families);
                let again = parse(text.as_bytes(), grouping)
                    .unwrap_or_else(|e| panic!("round {round}: {e} in\n{text}"));
                assert_eq!(again, families, "round {round}");
                assert_eq!(rendered(&again), text, "round {round}");
                let _ = chart(&families, &Config::default(), 0.0);
                true
            }
            Err(e) => {
                let lines = body.split(|&b| b == b'\n').count();
                assert!((1..=lines).contains(&e.line), "round {round}: {e}");
                assert!(!e.message.is_empty());
                false
            }
        }
    }

    #[test]
    fn mutated_bodies_never_panic_and_what_reads_renders_back_to_itself() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let grouping = pairs(&[("job", "fuzz"), ("instance", "a")]);
        let mut read = 0;
        for round in 0..4000 {
            let mut body = SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut body);
            }
            let grouping = if round % 2 == 0 { &grouping[..] } else { &[] };
            read += usize::from(check_round_trip(&body, grouping, round));
        }
        // Both ways are taken often: neither everything refused nor everything read.
        assert!((400..3600).contains(&read), "{read} of 4000 read");
    }

    #[test]
    fn random_bodies_of_format_pieces_never_panic() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut read = 0;
        for round in 0..3000 {
            let body: Vec<u8> = (0..rng.below(40))
                .flat_map(|_| PIECES[rng.below(PIECES.len())].bytes())
                .collect();
            read += usize::from(check_round_trip(&body, &[], round));
        }
        assert!(read > 30, "{read} of 3000 read");
    }

    #[test]
    fn a_metric_keeps_one_type_across_groups() {
        let stored = parse(b"# TYPE up gauge\nup 1\n", &pairs(&[("job", "a")])).unwrap();
        let push = parse(b"\n# TYPE up counter\nup 1\n", &pairs(&[("job", "b")])).unwrap();
        let e = check_against(&push, &stored).unwrap_err();
        assert_eq!((e.line, e.code), (3, Code::InvalidExposition));
        assert!(
            e.message.contains("up is a counter here but a gauge"),
            "{}",
            e.message
        );
        let same = parse(b"# TYPE up gauge\nup 0\n", &pairs(&[("job", "b")])).unwrap();
        check_against(&same, &stored).unwrap();
    }

    #[test]
    fn a_series_that_another_group_pushes_too_is_refused() {
        // The Pushgateway's issue 232: one group's grouping label is the other's sample label.
        let stored = parse(b"some_metric 1\n", &pairs(&[("job", "j"), ("tag", "v")])).unwrap();
        let push = parse(b"some_metric{tag=\"v\"} 42\n", &pairs(&[("job", "j")])).unwrap();
        let e = check_against(&push, &stored).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(
            e.message
                .contains("some_metric{job=\"j\",tag=\"v\"} is pushed by another group"),
            "{}",
            e.message
        );
        let other = parse(b"some_metric{tag=\"w\"} 42\n", &pairs(&[("job", "j")])).unwrap();
        check_against(&other, &stored).unwrap();
        check_against(&push, &[]).unwrap();
    }
}
