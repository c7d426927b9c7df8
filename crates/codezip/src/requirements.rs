//! `requirements.txt` of a code context: every line checked against the rules, turned into one
//! canonical requirement. Only plain PEP 508 requirements by name pass: the build installs them
//! from agentbuild's own index (a stack parameter), binary wheels only, so a line that names an
//! index, a file, a URL, a VCS checkout or another requirements file is refused, naming the line.

use crate::error::ContextError;
use crate::marker;

/// One requirement in canonical form: `name[extra,…]spec ; marker`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Requirement {
    pub name: String,
    pub extras: Vec<String>,
    pub spec: String,
    pub marker: Option<String>,
}

impl Requirement {
    pub fn canonical(&self) -> String {
        let mut out = self.name.clone();
        if !self.extras.is_empty() {
            out.push_str(&format!("[{}]", self.extras.join(",")));
        }
        out.push_str(&self.spec);
        if let Some(m) = &self.marker {
            out.push_str(&format!(" ; {m}"));
        }
        out
    }
}

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn is_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Why a (comment-free, non-empty) line is not a plain requirement by name, if it is not.
fn refusal(line: &str) -> Option<&'static str> {
    let head = line.split(';').next().unwrap_or(line);
    if line.starts_with('-') {
        return Some("options are not allowed (no index, find-links, -e, -r or -c lines): agentbuild installs plain requirements from its own index, binary wheels only");
    }
    if head
        .split_whitespace()
        .skip(1)
        .any(|word| word.starts_with('-'))
    {
        return Some("per-requirement options (`--hash=…`, `--config-settings`, …) are not supported: remove them (the layer is keyed by its requirements and installed from agentbuild's index, binary wheels only)");
    }
    if head.contains("://")
        || ["git+", "hg+", "svn+", "bzr+"]
            .iter()
            .any(|p| head.starts_with(p))
    {
        return Some("URL and VCS requirements are not allowed: name a package from the index");
    }
    if head.contains('@') {
        return Some(
            "direct references (`name @ url`) are not allowed: name a package from the index",
        );
    }
    if head.starts_with(['.', '/', '~', '\\']) || head.contains(['/', '\\']) {
        return Some("path requirements are not allowed: name a package from the index");
    }
    if [".whl", ".tar.gz", ".zip", ".tgz", ".tar.bz2"]
        .iter()
        .any(|s| head.trim().ends_with(s))
    {
        return Some("file requirements are not allowed: name a package from the index");
    }
    if line.contains("${") {
        return Some("environment variables are not expanded in requirements");
    }
    None
}

/// The version clauses: `>=1.0,<2` (optionally in parentheses), whitespace removed.
fn parse_spec(text: &str) -> Result<String, String> {
    let mut spec: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if spec.starts_with('(') && spec.ends_with(')') {
        spec = spec[1..spec.len() - 1].to_string();
    }
    if spec.is_empty() {
        return Ok(spec);
    }
    for clause in spec.split(',') {
        let op_len = clause.chars().take_while(|c| "<>=!~".contains(*c)).count();
        let (op, version) = clause.split_at(op_len);
        let version_ok = !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".*+!_-".contains(c));
        if !["<", "<=", ">", ">=", "==", "!=", "~=", "==="].contains(&op) || !version_ok {
            return Err(format!("`{clause}` is not a version specifier"));
        }
    }
    Ok(spec)
}

/// One requirement line (comments stripped, continuations joined) to its canonical form.
pub(crate) fn parse_requirement(line: &str) -> Result<Requirement, String> {
    if let Some(rule) = refusal(line) {
        return Err(rule.to_string());
    }
    let (head, marker) = match line.split_once(';') {
        Some((h, m)) => (h, Some(m.trim())),
        None => (line, None),
    };
    let name_len = head
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .unwrap_or(head.len());
    let name = &head[..name_len];
    if !is_name(name) {
        return Err(format!("`{}` is not a package name", head.trim()));
    }
    let mut rest = head[name_len..].trim_start();
    let mut extras = Vec::new();
    if let Some(after) = rest.strip_prefix('[') {
        let (inside, tail) = after.split_once(']').ok_or("unterminated `[` of extras")?;
        for extra in inside.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !is_name(extra) {
                return Err(format!("`{extra}` is not an extra's name"));
            }
            extras.push(normalize_name(extra));
        }
        extras.sort();
        extras.dedup();
        rest = tail;
    }
    let spec = parse_spec(rest)?;
    let marker = match marker {
        Some(m) => {
            marker::parse(m).map_err(|e| format!("marker: {e}"))?;
            Some(m.split_whitespace().collect::<Vec<_>>().join(" "))
        }
        None => None,
    };
    Ok(Requirement {
        name: normalize_name(name),
        extras,
        spec,
        marker,
    })
}

/// The logical lines of a requirements file: (first physical line number, text), comments
/// (`#` at the start or after whitespace) removed, `\` continuations joined, blanks skipped.
fn logical_lines(text: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(u32, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index as u32 + 1;
        let without_comment = match raw.find('#') {
            Some(0) => "",
            Some(i) if raw[..i].ends_with(char::is_whitespace) => &raw[..i],
            _ => raw,
        };
        let (body, continues) = match without_comment.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (without_comment, false),
        };
        let (start, mut joined) = pending.take().unwrap_or((number, String::new()));
        joined.push_str(body);
        if continues {
            pending = Some((start, joined));
        } else if !joined.trim().is_empty() {
            out.push((start, joined.trim().to_string()));
        }
    }
    if let Some((start, joined)) = pending.filter(|(_, j)| !j.trim().is_empty()) {
        out.push((start, joined.trim().to_string()));
    }
    out
}

/// Every requirement of `text` (the file `file`), canonical, sorted and deduplicated; the first
/// refused line is the error, as `file:line: rule`.
pub(crate) fn parse_file(file: &str, text: &str) -> Result<Vec<Requirement>, ContextError> {
    let mut out = Vec::new();
    for (line, content) in logical_lines(text.strip_prefix('\u{feff}').unwrap_or(text)) {
        let requirement = parse_requirement(&content)
            .map_err(|rule| ContextError::at(file, line, format!("`{content}`: {rule}")))?;
        out.push(requirement);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> ContextError {
        parse_file("requirements.txt", text).unwrap_err()
    }

    #[test]
    fn canonicalises_names_extras_specs_and_markers() {
        let reqs = parse_file(
            "requirements.txt",
            "# comment\nStrands_Agents [OTEL, a2a] >= 1.0 , <2  # pinned\n\nbedrock-agentcore==1.0.3 ;  python_version >= '3.10'\nboto3 \\\n  ==1.40.0\n",
        )
        .unwrap();
        let lines: Vec<String> = reqs.iter().map(Requirement::canonical).collect();
        assert_eq!(
            lines,
            [
                "bedrock-agentcore==1.0.3 ; python_version >= '3.10'",
                "boto3==1.40.0",
                "strands-agents[a2a,otel]>=1.0,<2"
            ]
        );
    }

    #[test]
    fn refuses_index_options_naming_the_line() {
        for (text, line) in [
            ("boto3\n--index-url https://evil.example/simple\n", 2),
            ("--extra-index-url https://evil.example/simple\n", 1),
            ("-i https://evil.example/simple\n", 1),
            ("a\nb\n--find-links /tmp\n", 3),
            ("-f https://evil.example/\n", 1),
            ("--trusted-host evil.example\n", 1),
            ("--hash=sha256:00\n", 1),
        ] {
            let err = refused(text);
            assert_eq!(err.line, Some(line), "{err}");
            assert!(err.message.contains("options are not allowed"), "{err}");
        }
    }

    #[test]
    fn refuses_editable_and_nested_requirement_files() {
        for text in [
            "-e .\n",
            "-e git+https://github.com/x/y\n",
            "-r other.txt\n",
            "-c constraints.txt\n",
            "--requirement other.txt\n",
        ] {
            let err = refused(text);
            assert_eq!(
                err.to_string().split(": ").next(),
                Some("requirements.txt:1"),
                "{err}"
            );
        }
    }

    #[test]
    fn refuses_vcs_url_and_path_requirements() {
        for (text, rule) in [
            ("git+https://github.com/x/y.git\n", "URL and VCS"),
            ("https://evil.example/pkg-1.0.tar.gz\n", "URL and VCS"),
            ("pkg @ https://evil.example/pkg.whl\n", "URL and VCS"),
            ("pkg @ file:///tmp/pkg\n", "URL and VCS"),
            ("pkg@ git+ssh://x\n", "URL and VCS"),
            ("./vendor/pkg\n", "path requirements"),
            ("/abs/pkg\n", "path requirements"),
            ("vendor/pkg-1.0-py3-none-any.whl\n", "path requirements"),
            ("pkg-1.0.tar.gz\n", "file requirements"),
            (".\n", "path requirements"),
            ("pkg==${VERSION}\n", "environment variables"),
        ] {
            let err = refused(text);
            assert_eq!(err.line, Some(1));
            assert!(err.message.contains(rule), "{text}: {err}");
        }
    }

    #[test]
    fn refuses_malformed_names_specs_and_markers() {
        assert!(refused("pkg === \n").message.contains("version specifier"));
        assert!(refused("pkg ; os.system('x')\n").message.contains("marker"));
        assert!(refused("[x]\n").message.contains("package name"));
        assert!(refused("pkg[\n").message.contains("extras"));
    }

    #[test]
    fn refuses_per_requirement_options_and_reads_bom_and_crlf() {
        let err = refused("boto3==1.40.0 \\\n    --hash=sha256:0123\n");
        assert!(err.message.contains("per-requirement options"), "{err}");
        let reqs = parse_file("requirements.txt", "\u{feff}boto3\r\nsix\r\n").unwrap();
        let lines: Vec<String> = reqs.iter().map(Requirement::canonical).collect();
        assert_eq!(lines, ["boto3", "six"]);
    }

    #[test]
    fn names_the_first_line_of_a_continued_requirement() {
        let err = refused("boto3\nevil \\\n @ https://x/y.whl\n");
        assert_eq!(err.line, Some(2));
    }
}
