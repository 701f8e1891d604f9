//! Which delegated role an artifact path belongs to, decided exactly as
//! python-tuf's `DelegatedRole.is_delegated_path` does: path and pattern are
//! split on `/`, must have as many parts, and each part must match with
//! Python's `fnmatch.fnmatchcase`. Getting this wrong would put artifacts in
//! roles that clients never look in.
use sha2::{Digest, Sha256};

use super::key::hex_lower;

/// How a delegated role claims paths.
#[derive(Debug, Clone, Copy)]
pub enum PathSpec<'a> {
    /// Glob patterns (`paths`).
    Patterns(&'a [String]),
    /// Prefixes of the lowercase hex sha256 of the path (`path_hash_prefixes`).
    HashPrefixes(&'a [String]),
}

impl PathSpec<'_> {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathSpec::Patterns(patterns) => patterns.iter().any(|p| path_matches(p, path)),
            PathSpec::HashPrefixes(prefixes) => {
                let digest = hex_lower(&Sha256::digest(path.as_bytes()));
                prefixes.iter().any(|p| digest.starts_with(p.as_str()))
            }
        }
    }
}

/// One glob pattern against one path, part by part.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pattern_parts = pattern.split('/');
    let mut path_parts = path.split('/');
    loop {
        match (pattern_parts.next(), path_parts.next()) {
            (None, None) => return true,
            (Some(pat), Some(part)) if fnmatch(pat, part) => {}
            _ => return false,
        }
    }
}

/// Python's `fnmatch.fnmatchcase(name, pattern)`: `*`, `?`, `[set]`,
/// `[!set]`; no escapes; case-sensitive; `*` also matches newlines.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let tokens = tokenize(&pattern.chars().collect::<Vec<_>>());
    let name: Vec<char> = name.chars().collect();
    glob_match(&tokens, &name)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Star,
    One(Class),
}

#[derive(Debug, Clone, PartialEq)]
enum Class {
    Literal(char),
    Any,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Class {
    fn matches(&self, c: char) -> bool {
        match self {
            Class::Literal(l) => *l == c,
            Class::Any => true,
            Class::Set { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

fn tokenize(pat: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < pat.len() {
        let c = pat[i];
        i += 1;
        match c {
            '*' => {
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::One(Class::Any)),
            '[' => match bracket_end(pat, i) {
                Some(end) => {
                    tokens.push(Token::One(parse_set(&pat[i..end])));
                    i = end + 1;
                }
                None => tokens.push(Token::One(Class::Literal('['))),
            },
            _ => tokens.push(Token::One(Class::Literal(c))),
        }
    }
    tokens
}

/// Index of the `]` closing a set that starts at `start` (just after `[`).
/// A leading `!` and then a leading `]` belong to the set, as in Python.
fn bracket_end(pat: &[char], start: usize) -> Option<usize> {
    let mut j = start;
    if pat.get(j) == Some(&'!') {
        j += 1;
    }
    if pat.get(j) == Some(&']') {
        j += 1;
    }
    (j..pat.len()).find(|&k| pat[k] == ']')
}

/// The members of `[...]`, following `fnmatch.translate`: the text is cut
/// into chunks at the `-` signs that form ranges, reversed ranges are
/// dropped, and every other character is literal.
fn parse_set(body: &[char]) -> Class {
    let (negated, skip) = match body.first() {
        Some('!') => (true, 1),
        _ => (false, 0),
    };
    let mut chunks: Vec<Vec<char>> = Vec::new();
    let mut from = 0;
    let mut k = skip + 1;
    while let Some(dash) = (k..body.len()).find(|&x| body[x] == '-') {
        chunks.push(body[from..dash].to_vec());
        from = dash + 1;
        k = dash + 3;
    }
    let last = body[from..].to_vec();
    match chunks.last_mut() {
        Some(prev) if last.is_empty() => prev.push('-'),
        _ => chunks.push(last),
    }
    drop_reversed_ranges(&mut chunks);
    let mut members: Vec<char> = chunks.concat();
    if negated {
        members.remove(0);
    }
    if members.is_empty() {
        // `[!]`-like sets match any one character, empty sets nothing.
        return if negated {
            Class::Any
        } else {
            Class::Set {
                negated: false,
                ranges: Vec::new(),
            }
        };
    }
    Class::Set {
        negated,
        ranges: chunk_ranges(&chunks, negated),
    }
}

fn drop_reversed_ranges(chunks: &mut Vec<Vec<char>>) {
    for k in (1..chunks.len()).rev() {
        let (end, start) = (chunks[k - 1].last().copied(), chunks[k].first().copied());
        if let (Some(end), Some(start)) = (end, start) {
            if end > start {
                let tail: Vec<char> = chunks[k][1..].to_vec();
                chunks[k - 1].pop();
                chunks[k - 1].extend(tail);
                chunks.remove(k);
            }
        }
    }
}

/// Chunks joined by range dashes: the last char of one chunk and the first
/// char of the next form a range; everything else is a single member.
fn chunk_ranges(chunks: &[Vec<char>], negated: bool) -> Vec<(char, char)> {
    let mut ranges = Vec::new();
    let mut pending: Option<char> = None;
    for (n, chunk) in chunks.iter().enumerate() {
        let mut chars = chunk.as_slice();
        if n == 0 && negated {
            chars = &chars[1..];
        }
        if let (Some(lo), Some(&hi)) = (pending.take(), chars.first()) {
            ranges.push((lo, hi));
            chars = &chars[1..];
        }
        let is_last = n + 1 == chunks.len();
        if let Some((&end, middle)) = chars.split_last() {
            ranges.extend(middle.iter().map(|&c| (c, c)));
            if is_last {
                ranges.push((end, end));
            } else {
                pending = Some(end);
            }
        }
    }
    ranges
}

/// Classic wildcard matching with backtracking to the last `*`; every other
/// token consumes exactly one character.
fn glob_match(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                star = Some((t, n));
                t += 1;
            }
            Some(Token::One(class)) if class.matches(name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match star {
                Some((st, sn)) => {
                    t = st + 1;
                    n = sn + 1;
                    star = Some((st, sn + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;
    use serde_json::Value;

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn pattern_matrix_matches_python_tuf() {
        let doc = testdata::json("vectors/tuf/delegated-paths.json");
        let matrix = doc["pattern_matrix"].as_array().unwrap();
        assert!(matrix.len() >= 20);
        for row in matrix {
            let pattern = row["pattern"].as_str().unwrap();
            for path in strings(&row["matches"]) {
                assert!(
                    path_matches(pattern, &path),
                    "{pattern:?} should match {path:?}"
                );
            }
            for path in strings(&row["non_matches"]) {
                assert!(
                    !path_matches(pattern, &path),
                    "{pattern:?} must not match {path:?}"
                );
            }
        }
    }

    #[test]
    fn roles_for_target_in_delegation_order() {
        let doc = testdata::json("vectors/tuf/delegated-paths.json");
        let roles = doc["delegations_roles"].as_array().unwrap();
        let specs: Vec<(String, Vec<String>, bool, bool)> = roles
            .iter()
            .map(|r| {
                let hashed = r.get("path_hash_prefixes").is_some();
                let list = if hashed {
                    &r["path_hash_prefixes"]
                } else {
                    &r["paths"]
                };
                let name = r["name"].as_str().unwrap().to_owned();
                (
                    name,
                    strings(list),
                    hashed,
                    r["terminating"].as_bool().unwrap(),
                )
            })
            .collect();
        let cases = doc["get_roles_for_target"].as_array().unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let path = case["path"].as_str().unwrap();
            let got: Vec<Value> = specs
                .iter()
                .filter(|(_, list, hashed, _)| {
                    let spec = if *hashed {
                        PathSpec::HashPrefixes(list)
                    } else {
                        PathSpec::Patterns(list)
                    };
                    spec.matches(path)
                })
                .map(|(name, _, _, term)| serde_json::json!([name, term]))
                .collect();
            assert_eq!(Value::Array(got), case["roles_in_order"], "{path:?}");
        }
    }

    #[test]
    fn sets_follow_fnmatch_translate() {
        assert!(fnmatch("[a-c]x", "bx"));
        assert!(!fnmatch("[a-c]x", "dx"));
        assert!(fnmatch("[!a-c]x", "dx"));
        assert!(fnmatch("[a-]", "-"));
        assert!(fnmatch("[]]", "]"));
        assert!(fnmatch("[!]]", "a"));
        assert!(!fnmatch("[z-a]", "m"), "reversed range is empty");
        assert!(
            fnmatch("[!z-a]", "m"),
            "negated empty range matches anything"
        );
        assert!(fnmatch("[", "["), "unclosed bracket is literal");
        assert!(fnmatch("a*b*c", "aXbYbc"));
        assert!(fnmatch("*", "line\nbreak"));
        assert!(fnmatch("caf?", "café"), "? is one code point");
    }
}

#[cfg(test)]
mod differential {
    use super::fnmatch;

    /// 4000 random (pattern, name) pairs over the characters that make sets
    /// tricky, with the verdict of Python 3.11's `fnmatch.fnmatchcase`.
    #[test]
    fn agrees_with_python_on_random_patterns() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/fnmatch-python.json"
        );
        let cases: Vec<(String, String, bool)> =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(cases.len(), 4000);
        for (pattern, name, expected) in cases {
            assert_eq!(
                fnmatch(&pattern, &name),
                expected,
                "{pattern:?} vs {name:?}"
            );
        }
    }
}
