//! Parse, don't validate: the validated newtypes a request is made of (their constructors hold
//! the rules), the bounded string maps (build args, a runtime's environment), and the one
//! conversion of a serde failure into a [`RequestError`] that names the field path and the rule.
//!
//! Requests are read from a `serde_json::Value` (the API and the CLI parse their bytes strictly
//! first; Step Functions hands ValidateRequest a parsed input), so serde's messages carry no
//! line/column, and every part of a message that could quote caller text is rewritten.

use super::text::{clip, RequestError};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A broken rule, as a newtype's constructor reports it (serde turns it into a message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule(pub String);

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Rule {
    fn from(s: &str) -> Self {
        Rule(s.to_string())
    }
}

impl From<String> for Rule {
    fn from(s: String) -> Self {
        Rule(s)
    }
}

/// Deserializes `T` from `value`, which sits at field `prefix` of a request (`""`: it is the
/// request); a failure names the field path and the rule, and quotes at most 64 characters of
/// caller text.
pub fn from_value<T: DeserializeOwned>(
    value: &serde_json::Value,
    prefix: &str,
) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = join(prefix, &path_of(e.path()));
        let root = if prefix.is_empty() { "request" } else { prefix };
        explain(&path, root, &e.inner().to_string())
    })
}

/// `a.b.c` from serde's path: map keys clipped, list indices left out (a rule names its list).
fn path_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let parts: Vec<String> = path
        .iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(clip(key)),
            Segment::Enum { variant } => Some(clip(variant)),
            Segment::Seq { .. } | Segment::Unknown => None,
        })
        .collect();
    parts.join(".")
}

fn join(path: &str, name: &str) -> String {
    match (path, name) {
        ("", n) => n.to_string(),
        (p, "") => p.to_string(),
        (p, n) => format!("{p}.{n}"),
    }
}

/// serde's words -> ours: "missing field `x`" is `x: is required`, "unknown field `x`" names `x`
/// (clipped), "invalid type/value ..., expected E" is `must be E` (the unexpected value, which
/// is the caller's text, is dropped). Anything else is a newtype's own rule.
fn explain(path: &str, root: &str, message: &str) -> RequestError {
    let at = |field: String| {
        if field.is_empty() {
            root.to_string()
        } else {
            field
        }
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return RequestError::new(at(join(path, &clip(name))), "is required");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, allowed) = rest
            .rsplit_once("`, expected ")
            .map(|(n, a)| (n, a.trim_start_matches("one of ").replace('`', "")))
            .unwrap_or((
                rest.trim_end_matches("`, there are no fields"),
                "none".into(),
            ));
        // serde_path_to_error's path ends at the unknown key already.
        let name = clip(name);
        let field = if path.ends_with(&name) {
            path.to_string()
        } else {
            join(path, &name)
        };
        return RequestError::new(
            at(field),
            format!("unknown field; allowed fields: {allowed}"),
        );
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if message.starts_with(prefix) {
            let expected = message
                .rsplit_once(", expected ")
                .map_or("valid", |(_, e)| e);
            return RequestError::new(at(path.to_string()), format!("must be {expected}"));
        }
    }
    RequestError::new(at(path.to_string()), message)
}

/// A relative path inside the build context (`dockerfile`, `entryPoint`): plain characters,
/// no absolute path, no `..`/`.`/empty segment, no leading `-`.
pub fn context_path_rule(path: &str, max_len: usize) -> Result<(), Rule> {
    let fail = |rule: &str| Err(Rule::from(rule));
    if path.is_empty() || path.len() > max_len {
        return Err(Rule(format!("must be 1 to {max_len} characters")));
    }
    if path.starts_with('/') {
        return fail("must be a relative path inside the build context, not an absolute path");
    }
    if !path
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/'))
    {
        return fail("may contain only letters, digits, '.', '_', '-' and '/'");
    }
    if path
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return fail("must stay inside the build context: no '..', '.' or empty path segments");
    }
    if path.starts_with('-') {
        return fail("must not start with '-'");
    }
    Ok(())
}

/// Deserialize through `TryFrom<String>`, with the newtype's rule as the message.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = Rule;
            fn try_from(s: String) -> Result<Self, Rule> {
                $check(&s).map(|()| $name(s))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}
pub(crate) use string_newtype;

/// The rules of one kind of caller string map: how many entries, which keys, how big.
pub trait MapRules {
    /// What the entries are called in a message ("build args").
    const NOUN: &'static str;
    const MAX_ENTRIES: usize;
    const MAX_KEY_LEN: usize;
    const MAX_VALUE_BYTES: usize;
    const MAX_TOTAL_BYTES: usize;
    /// The rule a key breaks when it is not `^[A-Za-z_][A-Za-z0-9_]*$` of at most MAX_KEY_LEN.
    const KEY_RULE: &'static str;
    /// Why a key of the right form is still refused, if it is.
    fn refuse(key: &str) -> Option<&'static str>;
    /// A rule of the values' own, past size and NUL (a build secret's value is an ARN).
    fn value_rule(_value: &str) -> Result<(), Rule> {
        Ok(())
    }
}

/// A caller's string map (build args, environment variables) that passed `R`'s rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StringMap<R> {
    entries: BTreeMap<String, String>,
    #[serde(skip)]
    rules: PhantomData<R>,
}

impl<R> Default for StringMap<R> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            rules: PhantomData,
        }
    }
}

impl<R> StringMap<R> {
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.entries
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn is_key(k: &str, max: usize) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl<'de, R: MapRules> Deserialize<'de> for StringMap<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapVisitor::<R>(PhantomData))
    }
}

struct MapVisitor<R>(PhantomData<R>);

impl<'de, R: MapRules> Visitor<'de> for MapVisitor<R> {
    type Value = StringMap<R>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap<R>, A::Error> {
        let mut out = StringMap::<R>::default();
        let mut total = 0;
        while let Some(key) = map.next_key::<String>()? {
            if out.entries.len() == R::MAX_ENTRIES {
                return Err(de::Error::custom(format!(
                    "at most {} {}",
                    R::MAX_ENTRIES,
                    R::NOUN
                )));
            }
            // The value is read under the key's path, so a bad key is named by its path too.
            let value = map.next_value_seed(Entry::<R>(&key, PhantomData))?;
            total += value.len();
            if total > R::MAX_TOTAL_BYTES {
                return Err(de::Error::custom(format!(
                    "all values together must be at most {} bytes",
                    R::MAX_TOTAL_BYTES
                )));
            }
            out.entries.insert(key, value);
        }
        Ok(out)
    }
}

/// One value, checked with its key.
struct Entry<'k, R>(&'k str, PhantomData<R>);

impl<'de, R: MapRules> DeserializeSeed<'de> for Entry<'_, R> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        check_key::<R>(self.0).map_err(de::Error::custom)?;
        let v = String::deserialize(d)?;
        check_value::<R>(&v).map_err(de::Error::custom)?;
        Ok(v)
    }
}

fn check_key<R: MapRules>(key: &str) -> Result<(), Rule> {
    if !is_key(key, R::MAX_KEY_LEN) {
        return Err(R::KEY_RULE.into());
    }
    R::refuse(key).map_or(Ok(()), |why| Err(why.into()))
}

fn check_value<R: MapRules>(v: &str) -> Result<(), Rule> {
    if v.len() > R::MAX_VALUE_BYTES {
        return Err(format!("value must be at most {} bytes", R::MAX_VALUE_BYTES).into());
    }
    if v.contains('\0') {
        return Err("value must not contain NUL".into());
    }
    R::value_rule(v)
}

/// A map already held elsewhere (a plan) checked again against `R`'s rules.
impl<R: MapRules> TryFrom<BTreeMap<String, String>> for StringMap<R> {
    type Error = Rule;
    fn try_from(entries: BTreeMap<String, String>) -> Result<Self, Rule> {
        if entries.len() > R::MAX_ENTRIES {
            return Err(format!("at most {} {}", R::MAX_ENTRIES, R::NOUN).into());
        }
        let mut total = 0;
        for (k, v) in &entries {
            check_key::<R>(k)?;
            check_value::<R>(v)?;
            total += v.len();
        }
        if total > R::MAX_TOTAL_BYTES {
            return Err(format!(
                "all values together must be at most {} bytes",
                R::MAX_TOTAL_BYTES
            )
            .into());
        }
        Ok(StringMap {
            entries,
            rules: PhantomData,
        })
    }
}

/// What a struct read from an object says it expects (the message when it is not an object).
pub trait Expecting {
    const EXPECTING: &'static str;
}

/// `T` read from a JSON object only: serde's derive would also read a struct from a list
/// (`[]` as a `deploy` with every default), which no request means.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de> + Expecting> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Expecting> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
    }
}

/// `null` means "not given": the field's default.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serde_words_become_field_paths_and_rules_without_caller_text() {
        let e = explain("", "request", "missing field `project`");
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("project", "is required")
        );
        let e = explain(
            "deploy",
            "request",
            "unknown field `colour`, expected one of `a`, `b`",
        );
        assert_eq!(e.field, "deploy.colour");
        assert_eq!(e.message, "unknown field; allowed fields: a, b");
        let e = explain(
            "force",
            "request",
            "invalid type: string \"SECRET\", expected a boolean",
        );
        assert_eq!(e.message, "must be a boolean");
        assert!(!e.to_string().contains("SECRET"));
        let e = explain(
            "",
            "request",
            "invalid type: sequence, expected a JSON object",
        );
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("request", "must be a JSON object")
        );
    }

    #[test]
    fn a_long_unknown_key_is_clipped() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            a: Option<u8>,
        }
        let long = "k".repeat(500);
        let e = from_value::<S>(&json!({ long: 1 }), "").unwrap_err();
        assert!(e.field.chars().count() <= 65, "{}", e.field);
    }
}
