//! Celery's `saferepr` (celery/utils/saferepr.py) for JSON values: the text
//! of the `argsrepr`/`kwargsrepr` headers that Flower and `celery inspect`
//! show.
//!
//! It is not Python's `repr`: strings are only wrapped in `'` with `'`
//! escaped (no other escaping), containers nested `MAX_LEVELS` deep print as
//! `{...}`/`[...]`, and after `maxlen` characters the text is cut with
//! `, ...` followed by the still-open closing brackets. The streaming
//! algorithm is mirrored token by token so truncation lands on the same
//! character as Celery's.
use serde_json::Value;

use super::pyjson::float_repr;

/// Celery's `argsrepr_maxsize` and `kwargsrepr_maxsize`.
pub const MAX_SIZE: usize = 1024;
/// `saferepr`'s default `maxlevels`.
const MAX_LEVELS: usize = 3;

/// One step of the stream: literals carry whether they survive truncation
/// (closing brackets do, separators do not) and how they change the depth.
#[derive(Clone, Copy)]
enum Piece<'a> {
    Open(&'static str),
    Close(&'static str),
    Separator(&'static str),
    Key(&'a str),
    Item(&'a Value),
}

/// `saferepr(tuple(args), maxlen)`.
pub fn args_repr(args: &[Value], maxlen: usize) -> String {
    let close = if args.len() == 1 { ",)" } else { ")" };
    let mut frame = vec![Piece::Open("(")];
    push_sequence(&mut frame, args);
    frame.push(Piece::Close(close));
    render(frame, maxlen)
}

/// `saferepr(dict, maxlen)` for a JSON object (or any JSON value).
pub fn value_repr(value: &Value, maxlen: usize) -> String {
    render(vec![Piece::Item(value)], maxlen)
}

fn push_sequence<'a>(frame: &mut Vec<Piece<'a>>, items: &'a [Value]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            frame.push(Piece::Separator(", "));
        }
        frame.push(Piece::Item(item));
    }
}

fn container(value: &Value) -> Option<Vec<Piece<'_>>> {
    match value {
        Value::Array(items) => {
            let mut frame = vec![Piece::Open("[")];
            push_sequence(&mut frame, items);
            frame.push(Piece::Close("]"));
            Some(frame)
        }
        Value::Object(map) => {
            let mut frame = vec![Piece::Open("{")];
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    frame.push(Piece::Separator(", "));
                }
                frame.extend([Piece::Key(key), Piece::Separator(": "), Piece::Item(item)]);
            }
            frame.push(Piece::Close("}"));
            Some(frame)
        }
        _ => None,
    }
}

fn elided(value: &Value) -> &'static str {
    if value.is_array() {
        "[...]"
    } else {
        "{...}"
    }
}

/// Text of a value that is not a container: Python's `str()` of numbers and
/// booleans, `repr(None)`.
fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => float_repr(f),
            (None, None, None) => n.to_string(),
        },
        // Strings and containers are handled by the caller.
        Value::String(_) | Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// What a piece prints as, given the characters still allowed.
enum Token<'a> {
    Literal(&'static str),
    Quoted(&'a str),
    Plain(String),
}

fn render(top: Vec<Piece<'_>>, maxlen: usize) -> String {
    // A stack of frames stands in for Python's chained iterators: entering a
    // container pushes its pieces on top of the rest of the enclosing one.
    let mut frames: Vec<std::vec::IntoIter<Piece<'_>>> = vec![top.into_iter()];
    let mut out = String::new();
    let mut budget = isize::try_from(maxlen).unwrap_or(isize::MAX);
    let mut level = 0usize;
    while let Some(piece) = next_piece(&mut frames) {
        let token = match piece {
            Piece::Open(text) => {
                level += 1;
                Token::Literal(text)
            }
            Piece::Close(text) => {
                level = level.saturating_sub(1);
                Token::Literal(text)
            }
            Piece::Separator(text) => Token::Literal(text),
            Piece::Key(key) => Token::Quoted(key),
            Piece::Item(Value::String(s)) => Token::Quoted(s),
            Piece::Item(item) => match container(item) {
                Some(_) if level >= MAX_LEVELS => Token::Plain(elided(item).into()),
                Some(frame) => {
                    frames.push(frame.into_iter());
                    continue;
                }
                None => Token::Plain(scalar(item)),
            },
        };
        if budget <= 0 {
            out.push_str(", ...");
            close_open_brackets(&mut frames, &mut out);
            break;
        }
        // Positive here, so the conversion is exact.
        let limit = budget.unsigned_abs();
        let text = match token {
            Token::Literal(text) => text.to_owned(),
            Token::Quoted(s) => format!("'{}'", truncate(s, limit).replace('\'', "\\'")),
            Token::Plain(text) => truncate(&text, limit),
        };
        budget -= isize::try_from(text.chars().count()).unwrap_or(isize::MAX);
        out.push_str(&text);
    }
    out
}

fn next_piece<'a>(frames: &mut Vec<std::vec::IntoIter<Piece<'a>>>) -> Option<Piece<'a>> {
    loop {
        let top = frames.last_mut()?;
        match top.next() {
            Some(piece) => return Some(piece),
            None => {
                frames.pop();
            }
        }
    }
}

/// After the cut Celery still prints the brackets that are not truncatable;
/// only closing ones remain unread at that point.
fn close_open_brackets(frames: &mut Vec<std::vec::IntoIter<Piece<'_>>>, out: &mut String) {
    while let Some(piece) = next_piece(frames) {
        if let Piece::Open(text) | Piece::Close(text) = piece {
            out.push_str(text);
        }
    }
}

/// celery.utils.text.truncate: at `maxlen` characters or more, cut to
/// `maxlen`, drop the last partial word, add `...`.
fn truncate(s: &str, maxlen: usize) -> String {
    if maxlen == 0 || s.chars().count() < maxlen {
        return s.to_owned();
    }
    let head: String = s.chars().take(maxlen).collect();
    let kept = head
        .rsplit_once(' ')
        .map_or(head.as_str(), |(before, _)| before);
    format!("{kept}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;
    use serde_json::json;

    #[test]
    fn kwargsrepr_of_every_amqp_vector() {
        for name in [
            "amqp-metadata_repository-11111111111111111111111111111111.json",
            "amqp-metadata_repository-7a634b556f784ae88785d36425f9a218.json",
            "amqp-rstuf_internals-0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e.json",
        ] {
            let doc = testdata::json(&format!("vectors/celery/{name}"));
            let body = &doc["body_decoded"];
            assert_eq!(
                value_repr(&body[1], MAX_SIZE),
                doc["headers"]["kwargsrepr"].as_str().unwrap(),
                "{name}"
            );
            let args = body[0].as_array().unwrap();
            assert_eq!(args_repr(args, MAX_SIZE), doc["headers"]["argsrepr"]);
        }
    }

    #[test]
    fn scalars_and_strings_follow_saferepr_not_repr() {
        // Expected text from celery.utils.saferepr.saferepr(x) (celery 5.6.3).
        let value = json!({"a": [1, -2, 0.5, 1e16, true, false, null], "s": "it's é\n"});
        assert_eq!(
            value_repr(&value, MAX_SIZE),
            "{'a': [1, -2, 0.5, 1e+16, True, False, None], 's': 'it\\'s é\n'}"
        );
        assert_eq!(args_repr(&[json!(1)], MAX_SIZE), "(1,)");
        assert_eq!(args_repr(&[json!("x"), json!([])], MAX_SIZE), "('x', [])");
        assert_eq!(
            value_repr(&json!({"a": {"b": {"c": []}}}), MAX_SIZE),
            "{'a': {'b': {'c': [...]}}}"
        );
    }

    #[test]
    fn long_values_are_cut_like_celery() {
        // Expected text from saferepr(x, maxlen) (celery 5.6.3). The token that
        // crosses the limit is dropped even when it is a closing bracket.
        let roles: Vec<String> = (0..300).map(|i| format!("bins-{i:x}")).collect();
        let kwargs =
            json!({"action": "publish_artifacts", "payload": {"delegated_artifacts": roles}});
        let text = value_repr(&kwargs, MAX_SIZE);
        assert!(text.starts_with("{'action': 'publish_artifacts', 'payload': {'delegated_artifacts': ['bins-0', 'bins-1', "));
        assert!(
            text.ends_with(" 'bins-56', 'bins-57', 'bins...', ...]}}"),
            "{text}"
        );
        assert_eq!(text.chars().count(), 1037);
        assert_eq!(
            value_repr(&json!({"k": "a long sentence of words"}), 12),
            "{'k': 'a...', ..."
        );
        assert_eq!(
            value_repr(&json!({"k": "abcdef"}), 12),
            "{'k': 'abcdef...', ..."
        );
        assert_eq!(value_repr(&json!([1, [2, 3]]), 4), "[1, , ...]]");
    }
}
