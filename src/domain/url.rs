//! Reading a request's URL as the runtime serializes it (WHATWG): its origin and its query pairs,
//! without the `url` crate, whose IDNA tables cost about 60 KB of wasm for a string the runtime
//! has already parsed and normalized.

/// `scheme://host[:port]` of an absolute URL, or `None` when it has no `://`.
pub fn origin(url: &str) -> Option<&str> {
    let host_start = url.find("://")? + 3;
    let end = url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| host_start + i);
    (end > host_start).then(|| &url[..end])
}

/// The query string of a URL, without `?` and without any fragment.
pub fn query(url: &str) -> &str {
    let url = url.split('#').next().unwrap_or("");
    url.split_once('?').map_or("", |(_, q)| q)
}

/// `application/x-www-form-urlencoded` pairs, decoded as browsers and the `url` crate decode them:
/// `+` is a space, a broken `%` escape stays as written, invalid UTF-8 becomes U+FFFD. Empty
/// pieces (`a=1&&b=2`) are skipped; a name without `=` has an empty value.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|d| (*d as char).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        query_pairs(q)
    }

    #[test]
    fn the_origin_keeps_scheme_host_and_port_and_drops_the_rest() {
        assert_eq!(
            origin("https://pp.example.com/api/v1/ping/x?key=1"),
            Some("https://pp.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8787/"),
            Some("http://127.0.0.1:8787")
        );
        assert_eq!(origin("http://h?x"), Some("http://h"));
        assert_eq!(origin("/just/a/path"), None);
        assert_eq!(origin("http:///nohost"), None);
    }

    #[test]
    fn the_query_ends_at_a_fragment() {
        assert_eq!(query("http://h/p?a=1&b=2#frag?x"), "a=1&b=2");
        assert_eq!(query("http://h/p#frag?x"), "");
        assert_eq!(query("http://h/p"), "");
    }

    #[test]
    fn query_pairs_decode_as_a_form_does() {
        assert_eq!(
            pairs("key=pp_a%2Bb&labels=host%3Aa%2Cregion%3Aeu&q=two+words"),
            vec![
                ("key".into(), "pp_a+b".into()),
                ("labels".into(), "host:a,region:eu".into()),
                ("q".into(), "two words".into()),
            ]
        );
        assert_eq!(
            pairs("a&&b=&=c"),
            vec![
                ("a".into(), "".into()),
                ("b".into(), "".into()),
                ("".into(), "c".into())
            ]
        );
    }

    #[test]
    fn broken_escapes_stay_and_bad_utf8_is_replaced_not_refused() {
        assert_eq!(pairs("a=%zz%4"), vec![("a".into(), "%zz%4".into())]);
        assert_eq!(pairs("a=%ff"), vec![("a".into(), "\u{fffd}".into())]);
        assert_eq!(pairs("a=%C3%A9"), vec![("a".into(), "é".into())]);
        assert_eq!(pairs("x=1=2"), vec![("x".into(), "1=2".into())]);
    }
}
