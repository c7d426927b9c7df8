//! JSON as the API and the CLI accept it: bounded in size, and a key twice in one object is an
//! error (serde_json keeps the last one silently, so `{"force": false, "force": true}` would
//! mean whatever the last parser in a chain of proxies decided).

use super::request::{clip, RequestError};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The largest request the API and the CLI accept (design: "Build request").
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Why a request text was refused before its fields were looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("the request is {0} bytes; at most {MAX_REQUEST_BYTES} allowed")]
    TooLarge(usize),
    #[error("{0}")]
    Duplicate(RequestError),
    #[error("the request is not JSON: {0}")]
    Malformed(String),
}

/// Parses `bytes` as one JSON value, refusing a request over [`MAX_REQUEST_BYTES`] and any
/// object that names a key twice (at any depth; the error names the key's path).
pub fn parse_request(bytes: &[u8]) -> Result<Value, JsonError> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(JsonError::TooLarge(bytes.len()));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue {
        path: String::new(),
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| {
        let text = e.to_string();
        match text.strip_prefix(DUPLICATE) {
            Some(rest) => {
                let field = rest.split(" at line ").next().unwrap_or(rest);
                JsonError::Duplicate(RequestError::new(
                    field,
                    "appears twice; each key may appear once",
                ))
            }
            None => JsonError::Malformed(text),
        }
    })?;
    Ok(value)
}

const DUPLICATE: &str = "duplicate key ";

/// A `Value` deserializer that knows where it is, to name a duplicated key by its path.
struct StrictValue {
    path: String,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue {
            path: format!("{}[{}]", self.path, out.len()),
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                clip(&key)
            } else {
                format!("{}.{}", self.path, clip(&key))
            };
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE}{}", clip(&path))));
            }
            let v = map.next_value_seed(StrictValue { path })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_like_serde_json_does() {
        let text = br#"{"project": "p", "buildArgs": {"A": "1"}, "n": [1, 2.5, null, true]}"#;
        let want: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(parse_request(text).unwrap(), want);
    }

    #[test]
    fn rejects_a_duplicate_top_level_key_naming_it() {
        let err = parse_request(br#"{"force": false, "force": true}"#).unwrap_err();
        match err {
            JsonError::Duplicate(e) => {
                assert_eq!(e.field, "force");
                assert!(e.message.contains("twice"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_a_duplicate_nested_key_naming_its_path() {
        let err = parse_request(br#"{"buildArgs": {"A": "1", "A": "2"}}"#).unwrap_err();
        assert!(
            matches!(&err, JsonError::Duplicate(e) if e.field == "buildArgs.A"),
            "{err:?}"
        );
    }

    #[test]
    fn a_duplicated_long_key_is_named_in_at_most_64_characters() {
        let key = "k".repeat(500);
        let text = format!(r#"{{"{key}": 1, "{key}": 2}}"#);
        let JsonError::Duplicate(e) = parse_request(text.as_bytes()).unwrap_err() else {
            panic!("not a duplicate error")
        };
        assert!(e.field.chars().count() <= 65, "{}", e.field.len());
    }

    #[test]
    fn a_deeply_nested_duplicate_is_named_in_at_most_64_characters() {
        let key = "k".repeat(60);
        let mut text = String::new();
        for _ in 0..40 {
            text.push_str(&format!(r#"{{"{key}": "#));
        }
        text.push_str(r#"{"a": 1, "a": 2}"#);
        text.push_str(&"}".repeat(40));
        let JsonError::Duplicate(e) = parse_request(text.as_bytes()).unwrap_err() else {
            panic!("not a duplicate error")
        };
        assert!(e.field.chars().count() <= 65, "{}", e.field.len());
    }

    #[test]
    fn rejects_a_request_over_64_kib_before_parsing() {
        let big = vec![b' '; MAX_REQUEST_BYTES + 1];
        assert_eq!(
            parse_request(&big).unwrap_err(),
            JsonError::TooLarge(MAX_REQUEST_BYTES + 1)
        );
    }

    #[test]
    fn rejects_trailing_text_and_malformed_json() {
        for text in [&b"{} {}"[..], b"{\"a\": ", b"not json"] {
            assert!(
                matches!(parse_request(text), Err(JsonError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
