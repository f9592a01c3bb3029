//! Canonical JSON for signing: object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace, integers only, strings escaped minimally (`"`, `\`, and control characters).
//!
//! Written by hand rather than relying on `serde_json`'s map order, because that order changes
//! if any crate in the build enables serde_json's `preserve_order` feature — a signature must not
//! depend on feature unification.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("number {0} is not an integer; signed documents use integers only")]
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
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(CanonicalError::NotAnInteger(n.to_string()));
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
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                if let Some(val) = m.get(k) {
                    write(val, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_and_strips_whitespace() {
        let v: Value = serde_json::from_str(
            r#"{ "b": [1, -2, {"z": null, "a": true}], "a": "x\"y\\\n\u0001é", "B": 0 }"#,
        )
        .unwrap();
        let got = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(
            got,
            r#"{"B":0,"a":"x\"y\\\n\u0001é","b":[1,-2,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn refuses_floats() {
        let v: Value = serde_json::from_str(r#"{"x": 1.5}"#).unwrap();
        assert!(to_vec(&v).is_err());
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        let v: Value = serde_json::from_str(r#"{"k":{"y":[3,2,1],"x":"s"}}"#).unwrap();
        let once = to_vec(&v).unwrap();
        let again: Value = serde_json::from_slice(&once).unwrap();
        assert_eq!(to_vec(&again).unwrap(), once);
    }
}
