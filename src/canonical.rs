//! Canonical JSON for signing: object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace, integral numbers only. Two dialects, because a signature covers exact bytes:
//!
//! - [`Dialect::Pins`], pullgate's own pin files: integers exactly as written (i64/u64), and
//!   strings escaping `"`, `\` and control characters.
//! - [`Dialect::DockerGo`], what notary signs (docker/go `canonical/json`, trust-formats.md
//!   §3.4): strings escape only `"` and `\` (control characters go out raw), and numbers go
//!   through `f64`, because notary decodes the `signed` object into `interface{}` before
//!   re-encoding it — integers above 2^53 are signed in their rounded form.
//!
//! Written by hand rather than relying on `serde_json`'s map order, because that order changes
//! if any crate in the build enables serde_json's `preserve_order` feature — a signature must not
//! depend on feature unification.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Pins,
    DockerGo,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("number {0} is not an integer; signed documents use integers only")]
    NotAnInteger(String),
}

/// The canonical bytes of `v` in pullgate's own (pin file) dialect.
pub fn to_vec(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    to_vec_in(v, Dialect::Pins)
}

/// The canonical bytes of `v` in `dialect`.
pub fn to_vec_in(v: &Value, dialect: Dialect) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write(v, dialect, &mut out)?;
    Ok(out)
}

fn write(v: &Value, d: Dialect, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(n, d, out)?,
        Value::String(s) => write_str(s, d, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, d, out)?;
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, d, out);
                out.push(b':');
                write(val, d, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(
    n: &serde_json::Number,
    d: Dialect,
    out: &mut Vec<u8>,
) -> Result<(), CanonicalError> {
    let not_integer = || CanonicalError::NotAnInteger(n.to_string());
    let text = match d {
        Dialect::Pins => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(u)) => u.to_string(),
            _ => return Err(not_integer()),
        },
        // Exact integers first; beyond 2^53 only Go's float64 path remains.
        Dialect::DockerGo => match n.as_i64().filter(|i| i.unsigned_abs() <= 1 << 53) {
            Some(i) => i.to_string(),
            None => {
                let f = n
                    .as_f64()
                    .filter(|f| f.is_finite() && f.trunc() == *f && f.abs() < 9.2e18)
                    .ok_or_else(not_integer)?;
                // In range and integral: the conversion is exact, as Go's int64(f) is.
                (f as i64).to_string()
            }
        },
    };
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn write_str(s: &str, d: Dialect, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if d == Dialect::Pins && (c as u32) < 0x20 => match c {
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            },
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
    use serde_json::json;

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
        let v: Value = serde_json::from_str("2.0").unwrap();
        assert!(to_vec(&v).is_err(), "pins take integers as written only");
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        let v: Value = serde_json::from_str(r#"{"k":{"y":[3,2,1],"x":"s"}}"#).unwrap();
        let once = to_vec(&v).unwrap();
        let again: Value = serde_json::from_slice(&once).unwrap();
        assert_eq!(to_vec(&again).unwrap(), once);
    }

    #[test]
    fn docker_go_sorts_keys_by_bytes_without_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x"], "B": {"z": 0, "y": -3}});
        assert_eq!(
            to_vec_in(&v, Dialect::DockerGo).unwrap(),
            br#"{"B":{"y":-3,"z":0},"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn docker_go_escapes_only_quote_and_backslash() {
        let v = json!("a\"b\\c\nd\u{1}<&>\u{2028}é");
        assert_eq!(
            to_vec_in(&v, Dialect::DockerGo).unwrap(),
            "\"a\\\"b\\\\c\nd\u{1}<&>\u{2028}é\"".as_bytes()
        );
    }

    #[test]
    fn docker_go_prints_integral_floats_as_integers_and_refuses_fractions() {
        let v: Value = serde_json::from_str(r#"[1.0, 2e3, 9007199254740993]"#).unwrap();
        // 2^53 + 1 rounds to 2^53 through float64, as in Go.
        assert_eq!(
            to_vec_in(&v, Dialect::DockerGo).unwrap(),
            b"[1,2000,9007199254740992]"
        );
        let v: Value = serde_json::from_str("1.5").unwrap();
        assert!(matches!(
            to_vec_in(&v, Dialect::DockerGo),
            Err(CanonicalError::NotAnInteger(_))
        ));
    }
}
