//! PEM armour: finding a block by label and writing one the way OpenSSL
//! does (the exact text matters because key ids hash it).
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::Invalid;

const BEGIN: &str = "-----BEGIN ";
const DASHES: &str = "-----";
const LINE_WIDTH: usize = 64;

/// One decoded PEM block.
pub(crate) struct Block {
    pub label: String,
    /// RFC 1421 headers (`Proc-Type`, `DEK-Info`) of legacy encrypted keys.
    pub headers: Vec<(String, String)>,
    pub der: Vec<u8>,
}

impl Block {
    /// Legacy OpenSSL encryption (`Proc-Type: 4,ENCRYPTED`).
    pub fn is_legacy_encrypted(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, value)| name == "Proc-Type" && value.contains("ENCRYPTED"))
    }
}

/// The first block whose label is one of `labels`. Text around and between
/// blocks is ignored and line ends may be CRLF, as `cryptography` allows.
pub(crate) fn find(text: &str, labels: &[&str]) -> Result<Block, Invalid> {
    let mut rest = text;
    let mut seen = Vec::new();
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start + BEGIN.len()..];
        let Some(label_len) = after_begin.find(DASHES) else {
            break;
        };
        let label = &after_begin[..label_len];
        let body = &after_begin[label_len + DASHES.len()..];
        if labels.contains(&label) {
            return decode(label, body);
        }
        if !label.contains('\n') {
            seen.push(label);
        }
        rest = body;
    }
    let found = if seen.is_empty() {
        "no PEM block".to_owned()
    } else {
        format!("only {}", seen.join(", "))
    };
    Err(Invalid(format!(
        "expected a PEM block labelled {}, found {found}",
        labels.join(" or ")
    )))
}

/// The block body after `-----BEGIN <label>-----`, up to its END line.
fn decode(label: &str, body: &str) -> Result<Block, Invalid> {
    let end_line = format!("-----END {label}-----");
    let end = body
        .find(&end_line)
        .ok_or_else(|| Invalid(format!("PEM block {label} has no {end_line} line")))?;
    let lines = body[..end]
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty());
    let mut headers = Vec::new();
    let mut base64 = String::new();
    let mut in_headers = true;
    for line in lines {
        match line.split_once(':') {
            Some((name, value)) if in_headers => {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            _ if in_headers && line.is_empty() => in_headers = false,
            _ => {
                in_headers = false;
                base64.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
            }
        }
    }
    let der = STANDARD
        .decode(base64.as_bytes())
        .map_err(|e| Invalid(format!("PEM block {label} is not valid base64: {e}")))?;
    Ok(Block {
        label: label.to_owned(),
        headers,
        der,
    })
}

/// `-----BEGIN <label>-----`, base64 in 64-character lines, END line, with
/// a final newline: byte for byte what OpenSSL and `cryptography` write.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("{BEGIN}{label}{DASHES}\n");
    for start in (0..b64.len()).step_by(LINE_WIDTH) {
        out.push_str(&b64[start..b64.len().min(start + LINE_WIDTH)]);
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}{DASHES}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_wanted_block_among_others_with_crlf_and_junk() {
        let text = "junk\r\n-----BEGIN CERTIFICATE-----\r\nAAEC\r\n-----END CERTIFICATE-----\r\n\
                    -----BEGIN PUBLIC KEY-----\r\nAQID\r\nBA==\r\n-----END PUBLIC KEY-----trailing";
        let block = find(text, &["PUBLIC KEY"]).unwrap();
        assert_eq!(block.label, "PUBLIC KEY");
        assert_eq!(block.der, [1, 2, 3, 4]);
        assert!(block.headers.is_empty());
    }

    #[test]
    fn reads_legacy_encryption_headers() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                    DEK-Info: AES-128-CBC,00\n\nAQID\n-----END RSA PRIVATE KEY-----\n";
        let block = find(text, &["RSA PRIVATE KEY"]).unwrap();
        assert!(block.is_legacy_encrypted());
        assert_eq!(
            block.headers[1],
            ("DEK-Info".into(), "AES-128-CBC,00".into())
        );
        assert_eq!(block.der, [1, 2, 3]);
    }

    #[test]
    fn refuses_missing_blocks_end_lines_and_bad_base64() {
        let other = find(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAA==\n",
            &["PRIVATE KEY"],
        );
        assert_eq!(
            other.err().unwrap().0,
            "expected a PEM block labelled PRIVATE KEY, found only OPENSSH PRIVATE KEY"
        );
        let no_end = find(
            "-----BEGIN PUBLIC KEY-----\nAA==\n-----END KEY-----",
            &["PUBLIC KEY"],
        );
        assert!(no_end
            .err()
            .unwrap()
            .0
            .contains("no -----END PUBLIC KEY----- line"));
        let bad = find(
            "-----BEGIN PUBLIC KEY-----\nA*==\n-----END PUBLIC KEY-----",
            &["PUBLIC KEY"],
        );
        assert!(bad.err().unwrap().0.contains("not valid base64"));
        assert!(find("", &["PUBLIC KEY"])
            .err()
            .unwrap()
            .0
            .ends_with("found no PEM block"));
    }

    #[test]
    fn encodes_in_64_character_lines_with_final_newline() {
        let pem = encode("PUBLIC KEY", &[0u8; 60]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2], "AAAAAAAAAAAAAAAA");
        assert_eq!(lines[3], "-----END PUBLIC KEY-----");
        assert!(pem.ends_with("-----\n"));
        assert_eq!(find(&pem, &["PUBLIC KEY"]).unwrap().der, [0u8; 60]);
    }
}
