//! How a group-commit round is made: which waiting writes it takes, by the bytes of their SQL
//! parameters, and how those JSON arrays are packed into values D1 accepts.

/// D1's limit for one string value is given as 1,000,000 bytes in some of its documentation and
/// 2,000,000 in others; a parameter stays at half of the smaller, so that nothing we do not count
/// (D1's own framing, a miscount) can push it over.
pub const MAX_PARAM_BYTES: usize = 500_000;
/// The most parameter bytes one round carries (a request's own batch may be larger: it rides alone).
pub const MAX_ROUND_BYTES: usize = 2 * MAX_PARAM_BYTES;
/// The most requests one round carries. A round refused by the series limit is written again in
/// halves to find the request at fault; `MAX_QUERIES` stops that search before the invocation's
/// budget runs out, and the requests not yet written then answer `busy` (nothing of them was
/// written, so sending them again is safe).
pub const MAX_MEMBERS: usize = 10;
/// Statements one write may spend on a round, retries included: the free plan allows 50 queries
/// per invocation, and a request has made a few before it writes (its key, for one).
pub const MAX_QUERIES: usize = 40;

/// Which of the waiting writes (their sizes in bytes, in arrival order) join the leader's write of
/// `own` bytes: every one that still fits, in order, up to MAX_MEMBERS in all. The leader's own
/// write always goes.
pub fn take(own: usize, waiting: &[usize]) -> Vec<bool> {
    let mut total = own;
    let mut members = 1;
    waiting
        .iter()
        .map(|&size| {
            let fits = members < MAX_MEMBERS && total + size <= MAX_ROUND_BYTES;
            if fits {
                total += size;
                members += 1;
            }
            fits
        })
        .collect()
}

/// Packs JSON arrays (`[...]`) into as few arrays as fit `cap` bytes each, keeping their elements
/// in order. An array that alone is larger than `cap` stays one value of its own (the caller
/// splits batches to the cap first, so that only happens for a single oversized element).
pub fn pack<'a>(arrays: impl IntoIterator<Item = &'a str>, cap: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for array in arrays {
        let inner = array
            .trim()
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or("")
            .trim();
        if inner.is_empty() {
            continue;
        }
        if !current.is_empty() && current.len() + inner.len() + 2 > cap {
            current.push(']');
            out.push(std::mem::take(&mut current));
        }
        current.push(if current.is_empty() { '[' } else { ',' });
        current.push_str(inner);
    }
    if !current.is_empty() {
        current.push(']');
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_takes_waiting_writes_in_order_while_their_bytes_fit() {
        let mb = MAX_PARAM_BYTES;
        assert_eq!(take(mb, &[mb / 2, mb, mb / 2]), [true, false, true]);
        assert_eq!(take(10, &[]), Vec::<bool>::new());
        assert_eq!(
            take(3 * mb, &[1]),
            [false],
            "an oversized leader rides alone"
        );
    }

    #[test]
    fn packing_joins_arrays_into_values_under_the_cap_and_keeps_every_element() {
        let a = r#"[{"c":"a"}]"#;
        let b = r#"[{"c":"b"},{"c":"c"}]"#;
        assert_eq!(pack([a, b], 1000), [r#"[{"c":"a"},{"c":"b"},{"c":"c"}]"#]);
        let small = pack([a, b, a], 25);
        assert_eq!(
            small,
            [
                r#"[{"c":"a"}]"#,
                r#"[{"c":"b"},{"c":"c"}]"#,
                r#"[{"c":"a"}]"#
            ]
        );
        for p in &small {
            assert!(serde_json::from_str::<serde_json::Value>(p)
                .unwrap()
                .is_array());
        }
    }

    #[test]
    fn empty_arrays_add_nothing() {
        assert!(pack(["[]", " [ ] "], 100).is_empty());
        assert_eq!(pack(["[]", "[1]"], 100), ["[1]"]);
    }
}
