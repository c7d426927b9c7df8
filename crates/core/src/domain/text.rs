//! Caller text and messages as errors and records carry them: a rejection naming its field,
//! caller text clipped before it is quoted, messages cut to a size. Shared by the request's and
//! the deploy field's rules and by records (no module of the domain below it).

use serde::Serialize;

/// Caller text quoted back in an error is cut to this many characters.
pub const MAX_ECHO_CHARS: usize = 64;
/// Error messages are cut to this many bytes: records and states stay small.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A rejected request: which field, and which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct RequestError {
    pub field: String,
    pub message: String,
}

impl RequestError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The rejection back from the text it displays as (`<field>: <rule>`: an `InvalidRequest`'s
    /// message, as Step Functions keeps it in the execution's cause) — the one place that reads
    /// it, so every answer after it carries `field` typed. `None` when it names no field.
    pub fn from_message(message: &str) -> Option<Self> {
        let (field, rule) = message.split_once(": ")?;
        let named = !field.is_empty() && !field.contains(char::is_whitespace);
        named.then(|| Self::new(field, rule))
    }
}

/// Caller text as an error may quote it: control characters dropped, at most
/// [`MAX_ECHO_CHARS`] characters (then `…`).
pub fn clip(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ECHO_CHARS)
        .collect();
    if text
        .chars()
        .filter(|c| !c.is_control())
        .nth(MAX_ECHO_CHARS)
        .is_some()
    {
        out.push('…');
    }
    out
}

/// `s` cut to at most `max` bytes on a character boundary (then `…`).
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_reads_back_from_the_text_it_displays_as() {
        let e = RequestError::new("buildArgs.X", "must match ^[A-Za-z_][A-Za-z0-9_]*$: yes");
        assert_eq!(RequestError::from_message(&e.to_string()), Some(e));
        assert_eq!(RequestError::from_message("no field here"), None);
        assert_eq!(RequestError::from_message("two words: rule"), None);
        assert_eq!(RequestError::from_message(": rule"), None);
    }
}
