//! Glob patterns with `*` and `?`, as OpenSSH matches host names, algorithm names and
//! `from=` entries.

/// Whether `text` matches `pattern`, where `*` matches any run of bytes and `?` any one.
///
/// Greedy, with one point to come back to: the most recent `*`. After a mismatch that
/// star takes one more byte and matching resumes just past it. Earlier stars never need
/// revisiting, so the cost is at most the product of the two lengths, even for patterns
/// such as `*a*a*a*b` that take a plain recursive matcher exponential time; patterns
/// come from files a hostile party may have written.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                resume = Some((p, t));
            }
            Some(&pc) if pc == b'?' || pc == c => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((star_p, star_t)) => {
                    p = star_p;
                    t = star_t + 1;
                    resume = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_openssh() {
        assert!(glob(b"*.example.com", b"a.example.com"));
        assert!(glob(b"10.0.?.*", b"10.0.1.200"));
        assert!(!glob(b"10.0.?.*", b"10.0.12.2"));
        assert!(glob(b"", b""));
        assert!(!glob(b"", b"a"));
        assert!(glob(b"**", b""));
    }
}
