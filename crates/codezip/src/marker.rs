//! PEP 508 environment markers: parsed to check a requirement line, evaluated for AgentCore's
//! platform (Linux, aarch64, CPython 3.X) to pick which packages of a `uv.lock` the runtime needs.

use crate::runtime::PythonRuntime;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Marker {
    Or(Vec<Marker>),
    And(Vec<Marker>),
    Compare(Value, String, Value),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Var(String),
    Str(String),
}

const VARIABLES: [&str; 12] = [
    "os_name",
    "sys_platform",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_version",
    "python_full_version",
    "implementation_name",
    "implementation_version",
    "extra",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Str(String),
    Op(String),
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            out.push(if c == '(' { Token::Open } else { Token::Close });
            i += 1;
        } else if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or("unterminated string")?;
            out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if "<>=!~".contains(c) {
            let len = chars[i..]
                .iter()
                .take_while(|d| "<>=!~".contains(**d))
                .count();
            let op: String = chars[i..i + len].iter().collect();
            if !["<", "<=", ">", ">=", "==", "!=", "~=", "==="].contains(&op.as_str()) {
                return Err(format!("unknown operator `{op}`"));
            }
            out.push(Token::Op(op));
            i += len;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let len = chars[i..]
                .iter()
                .take_while(|d| d.is_ascii_alphanumeric() || **d == '_' || **d == '.')
                .count();
            out.push(Token::Word(chars[i..i + len].iter().collect()));
            i += len;
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn list(
        &mut self,
        word: &str,
        item: fn(&mut Parser) -> Result<Marker, String>,
    ) -> Result<Vec<Marker>, String> {
        let mut items = vec![item(self)?];
        while self.peek() == Some(&Token::Word(word.to_string())) {
            self.pos += 1;
            items.push(item(self)?);
        }
        Ok(items)
    }

    fn or(&mut self) -> Result<Marker, String> {
        let mut items = self.list("or", Parser::and)?;
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Marker::Or(items)
        })
    }

    fn and(&mut self) -> Result<Marker, String> {
        let mut items = self.list("and", Parser::atom)?;
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Marker::And(items)
        })
    }

    fn atom(&mut self) -> Result<Marker, String> {
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                _ => Err("missing `)`".into()),
            };
        }
        let left = self.value()?;
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            Some(Token::Word(w)) if w == "in" => w,
            Some(Token::Word(w)) if w == "not" => match self.next() {
                Some(Token::Word(i)) if i == "in" => "not in".to_string(),
                _ => return Err("expected `in` after `not`".into()),
            },
            _ => return Err("expected a comparison operator".into()),
        };
        let right = self.value()?;
        Ok(Marker::Compare(left, op, right))
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Value::Str(s)),
            Some(Token::Word(w)) if VARIABLES.contains(&w.as_str()) => Ok(Value::Var(w)),
            Some(Token::Word(w)) => Err(format!("unknown marker variable `{w}`")),
            _ => Err("expected a marker variable or a quoted string".into()),
        }
    }
}

/// Parses a marker expression (the part of a requirement after `;`).
pub(crate) fn parse(text: &str) -> Result<Marker, String> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        pos: 0,
    };
    if parser.tokens.is_empty() {
        return Err("empty marker".into());
    }
    let marker = parser.or()?;
    if parser.pos != parser.tokens.len() {
        return Err("unexpected text after the marker".into());
    }
    Ok(marker)
}

/// The value of a marker variable on AgentCore's runtime (its micro version unknown: `.0`).
fn variable(name: &str, runtime: PythonRuntime) -> String {
    match name {
        "os_name" => "posix".into(),
        "sys_platform" => "linux".into(),
        "platform_machine" => "aarch64".into(),
        "platform_python_implementation" => "CPython".into(),
        "platform_system" => "Linux".into(),
        "python_version" => runtime.python_version().into(),
        "python_full_version" | "implementation_version" => {
            format!("{}.0", runtime.python_version())
        }
        "implementation_name" => "cpython".into(),
        _ => String::new(),
    }
}

fn version(text: &str) -> Option<Vec<u64>> {
    text.split('.').map(|p| p.parse().ok()).collect()
}

fn compare_versions(a: &[u64], b: &[u64]) -> Ordering {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn compare(left: &str, op: &str, right: &str) -> bool {
    if op == "in" || op == "not in" {
        return right.contains(left) == (op == "in");
    }
    if let (Some(a), Some(b)) = (version(left), version(right.trim_end_matches(".*"))) {
        let ord = compare_versions(&a, &b);
        return match op {
            "==" if right.ends_with(".*") => a.starts_with(&b),
            "!=" if right.ends_with(".*") => !a.starts_with(&b),
            "==" | "===" => ord.is_eq(),
            "!=" => ord.is_ne(),
            "<" => ord.is_lt(),
            "<=" => ord.is_le(),
            ">" => ord.is_gt(),
            ">=" => ord.is_ge(),
            // ~=: at least `b`, same release series up to b's last-but-one component.
            "~=" => ord.is_ge() && b.len() > 1 && a.starts_with(&b[..b.len() - 1]),
            _ => false,
        };
    }
    match op {
        "==" | "===" => left == right,
        "!=" => left != right,
        _ => false,
    }
}

/// Whether `marker` holds on AgentCore's runtime for `runtime` (no extras requested).
pub(crate) fn evaluate(marker: &Marker, runtime: PythonRuntime) -> bool {
    let value = |v: &Value| match v {
        Value::Var(name) => variable(name, runtime),
        Value::Str(s) => s.clone(),
    };
    match marker {
        Marker::Or(items) => items.iter().any(|m| evaluate(m, runtime)),
        Marker::And(items) => items.iter().all(|m| evaluate(m, runtime)),
        Marker::Compare(l, op, r) => compare(&value(l), op, &value(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(text: &str) -> bool {
        evaluate(&parse(text).unwrap(), PythonRuntime::Python312)
    }

    #[test]
    fn evaluates_for_linux_aarch64_cpython() {
        assert!(holds("sys_platform == 'linux'"));
        assert!(!holds("sys_platform == 'win32'"));
        assert!(!holds(
            "platform_system == 'Windows' or sys_platform == 'darwin'"
        ));
        assert!(holds(
            "python_version >= '3.10' and platform_machine == 'aarch64'"
        ));
        assert!(!holds("python_full_version < '3.11'"));
        assert!(holds(
            "(python_version < '3.13') and implementation_name == 'cpython'"
        ));
        assert!(holds("python_version ~= '3.8'"));
        assert!(!holds("extra == 'dev'"));
        assert!(holds("'linux' in sys_platform"));
    }

    #[test]
    fn rejects_malformed_markers() {
        assert!(parse("python_version >=").is_err());
        assert!(parse("os.system('x') == 1").is_err());
        assert!(parse("sys_platform == 'linux' ;").is_err());
        assert!(parse("(sys_platform == 'linux'").is_err());
    }
}
