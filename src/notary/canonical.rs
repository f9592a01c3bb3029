//! Canonical JSON exactly as docker/go's `canonical/json` writes it (trust-formats.md §3.4),
//! which is what notary signs: object keys sorted by their bytes, no insignificant whitespace,
//! strings escaping only `"` and `\`, numbers integral and printed as integers.
//!
//! Not `crate::trust::canonical`: that writer escapes control characters, docker/go emits them
//! raw, and one differing byte is a signature that does not verify. Numbers go through `f64`
//! here because notary decodes the `signed` object into `interface{}` (float64) before
//! re-encoding it, so integers above 2^53 are signed in their rounded form.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("number {0} is not an integer")]
    NotAnInteger(String),
}

/// The canonical bytes of `v`.
pub fn to_vec(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write(v, &mut out)?;
    Ok(out)
}

fn write(v: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            // Exact integers first; beyond i64/u64 only the float64 path of Go remains.
            if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= 1 << 53) {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                let f = n
                    .as_f64()
                    .filter(|f| f.is_finite() && f.trunc() == *f && f.abs() < 9.2e18)
                    .ok_or_else(|| CanonicalError::NotAnInteger(n.to_string()))?;
                // In range and integral: the conversion is exact, as Go's int64(f) is.
                let i = f as i64;
                out.extend_from_slice(i.to_string().as_bytes());
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(m) => {
            // Sorted here, not by the map: serde_json's map order depends on whether any crate
            // in the build enables `preserve_order`.
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write(val, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_by_bytes_without_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x"], "B": {"z": 0, "y": -3}});
        assert_eq!(
            to_vec(&v).unwrap(),
            br#"{"B":{"y":-3,"z":0},"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        let v = json!("a\"b\\c\nd\u{1}<&>\u{2028}é");
        assert_eq!(
            to_vec(&v).unwrap(),
            "\"a\\\"b\\\\c\nd\u{1}<&>\u{2028}é\"".as_bytes()
        );
    }

    #[test]
    fn integral_floats_print_as_integers_fractions_fail() {
        let v: Value = serde_json::from_str(r#"[1.0, 2e3, 9007199254740993]"#).unwrap();
        // 2^53 + 1 rounds to 2^53 through float64, as in Go.
        assert_eq!(to_vec(&v).unwrap(), b"[1,2000,9007199254740992]");
        let v: Value = serde_json::from_str("1.5").unwrap();
        assert!(matches!(to_vec(&v), Err(CanonicalError::NotAnInteger(_))));
    }
}
