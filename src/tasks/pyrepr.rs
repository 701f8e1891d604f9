//! Python's `repr()` of strings and lists of strings, where upstream puts
//! such text in front of the API: the `roles_to_publish` progress field and
//! the arguments in a ChordError message.

/// `repr(s)` for a `str`. Non-ASCII characters Python deems unprintable are
/// escaped for controls and separators only (the full Unicode category
/// table is not worth carrying for role names and exception messages).
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || (!c.is_ascii() && c.is_whitespace()) => {
                out.push_str(&escape(c));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn escape(c: char) -> String {
    let n = u32::from(c);
    if n <= 0xff {
        format!("\\x{n:02x}")
    } else if n <= 0xffff {
        format!("\\u{n:04x}")
    } else {
        format!("\\U{n:08x}")
    }
}

/// `repr(list_of_str)`: `['a', 'b']`.
pub fn list_repr<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|s| str_repr(s.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_role_names_read_like_python() {
        assert_eq!(list_repr(&["bins-e", "bins-3"]), "['bins-e', 'bins-3']");
        assert_eq!(list_repr::<&str>(&[]), "[]");
    }

    #[test]
    fn quotes_and_escapes_follow_python() {
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("both ' and \""), "'both \\' and \"'");
        assert_eq!(str_repr("a\\b\tc\nd\u{0}"), "'a\\\\b\\tc\\nd\\x00'");
        assert_eq!(str_repr("café\u{a0}x\u{2028}"), "'café\\xa0x\\u2028'");
        assert_eq!(
            str_repr("RSTUF: Task exceed `LOCK_TIMEOUT` (60 seconds)"),
            "'RSTUF: Task exceed `LOCK_TIMEOUT` (60 seconds)'"
        );
    }
}
