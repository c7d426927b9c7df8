//! The one error of this crate: what in the context is refused, and where.

use std::fmt;

/// A refusal naming the context file (and line) that caused it: `requirements.txt:3: …`.
/// `file` is a path inside the context zip (or the dependency layer's, prefixed
/// `dependencies:`), never a path on the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ContextError {
    pub file: String,
    pub line: Option<u32>,
    pub message: String,
}

impl ContextError {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            message: message.into(),
        }
    }

    pub fn at(file: impl Into<String>, line: u32, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: Some(line),
            message: message.into(),
        }
    }

    /// A zip that cannot be read at all (not a refusal of one of its files).
    pub(crate) fn zip(file: &str, err: zip::result::ZipError) -> Self {
        Self::new(file, format!("unreadable zip: {err}"))
    }

    pub(crate) fn io(file: &str, err: std::io::Error) -> Self {
        Self::new(file, format!("I/O error: {err}"))
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_line_message() {
        let e = ContextError::at("requirements.txt", 3, "options are not allowed");
        assert_eq!(e.to_string(), "requirements.txt:3: options are not allowed");
        assert_eq!(ContextError::new("a/b.py", "x").to_string(), "a/b.py: x");
    }
}
