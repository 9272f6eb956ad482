//! Base64 decoding, standard and URL-safe alphabets, padded or not: for Basic auth and the
//! Pushgateway's `@base64` path segments. A few lines instead of a crate.

/// The bytes `text` encodes, or `None` if it is not base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Six bits left over cannot end a valid encoding.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn both_alphabets_decode_with_or_without_padding() {
        assert_eq!(decode("YmFja3Vw").unwrap(), b"backup");
        assert_eq!(decode("dXNlcjpwcF9rZXk=").unwrap(), b"user:pp_key");
        assert_eq!(decode("dXNlcjpwcF9rZXk").unwrap(), b"user:pp_key");
        assert_eq!(decode("L3Zhci90bXA=").unwrap(), b"/var/tmp");
        assert_eq!(decode("L3Zhci90bXA").unwrap(), b"/var/tmp");
        assert_eq!(decode("_-8").unwrap(), decode("/+8").unwrap());
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn text_that_is_not_base64_is_refused() {
        assert_eq!(decode("a b"), None);
        assert_eq!(decode("abcde"), None);
        assert_eq!(decode("é"), None);
    }
}
