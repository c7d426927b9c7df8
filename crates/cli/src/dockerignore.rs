//! `.dockerignore` with Docker's own semantics, ported from the code `docker build` runs:
//! `moby/buildkit` `dockerignore.ReadAll` (parsing), `moby/patternmatcher` (pattern → regex,
//! `MatchesUsingParentResults`) and `tonistiigi/fsutil` `filter.go` (which directories the
//! walk may skip).
//!
//! Why a port and not a crate: `ignore`'s gitignore matcher (and `globset` used as a
//! gitignore) has different rules — an unanchored pattern such as `temp?` matches at any
//! depth in gitignore but only at the context root in Docker, `dir/` means "directories only"
//! in gitignore but is just `dir` after Docker's `filepath.Clean`, `{a,b}` is an alternation
//! in globset but literal braces in Docker, and `**foo` is a suffix test in Docker. Porting
//! the ~100 lines that define the behaviour onto `regex-lite` (already a workspace
//! dependency) is both smaller and exactly faithful.
//!
//! Semantics, in short:
//! - a line starting with `#` is a comment (before trimming, as in Docker); blank lines are
//!   ignored; a UTF-8 BOM on the first line is dropped;
//! - `!` negates; patterns are applied in order and the last one that matches wins;
//! - each pattern is trimmed and `filepath.Clean`ed, then a leading `/` is dropped: paths are
//!   relative to the context root, so `/foo` and `foo` are the same pattern, and so are
//!   `dir/` and `dir`; the pattern `.` never matches;
//! - `*` and `?` never cross `/`, `[...]` is a character class, `\` escapes, `**` matches any
//!   number of directories (including none); a pattern matching a directory excludes
//!   everything below it (evaluated per directory level, exactly like BuildKit does).

use regex_lite::Regex;

/// A malformed `.dockerignore` line. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: invalid pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pub line: usize,
    pub pattern: String,
    pub reason: String,
}

/// The parsed patterns of one `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
    /// BuildKit may skip an excluded directory only when no exception pattern (minus a
    /// trailing `/*` or `/**`) contains a wildcard; otherwise it has to look inside.
    only_prefix_exceptions: bool,
}

/// Per-pattern "matched this directory" results, handed from a directory to its entries
/// (`patternmatcher.MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo(Vec<bool>);

impl DockerIgnore {
    /// Parses the contents of a `.dockerignore` file.
    pub fn parse(contents: &str) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        // bufio.ScanLines: split on '\n', drop one trailing '\r'.
        for (index, raw) in contents.split('\n').enumerate() {
            let mut line = raw.strip_suffix('\r').unwrap_or(raw);
            if index == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if line.starts_with('#') {
                continue;
            }
            let Some(pattern) = read_line(line) else {
                continue;
            };
            if let Some(pattern) = Pattern::new(&pattern).map_err(|reason| PatternError {
                line: index + 1,
                pattern: line.trim().to_owned(),
                reason,
            })? {
                patterns.push(pattern);
            }
        }
        Ok(Self::from_patterns(patterns))
    }

    fn from_patterns(patterns: Vec<Pattern>) -> Self {
        let only_prefix_exceptions = patterns.iter().filter(|p| p.exclusion).all(|p| {
            !p.without_trailing_glob()
                .contains(['*', '[', ']', '?', '^', '\\'])
        });
        Self {
            patterns,
            only_prefix_exceptions,
        }
    }

    /// Whether any pattern is an exception (`!...`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context root, `/`-separated, no `.`/`..` parts) is
    /// excluded, evaluating each of its parent directories first as a directory walk does.
    pub fn is_excluded(&self, path: &str) -> bool {
        let mut info = None;
        let mut excluded = false;
        for (end, _) in path.match_indices('/').chain([(path.len(), "")]) {
            let (m, next) = self.matches(&path[..end], info.as_ref());
            excluded = m;
            info = Some(next);
        }
        excluded
    }

    /// `patternmatcher.MatchesUsingParentResults`: whether `path` is excluded, given the
    /// results of its parent directory (`None` at the context root), and this path's own
    /// results for its children.
    pub fn matches(&self, path: &str, parent: Option<&MatchInfo>) -> (bool, MatchInfo) {
        let parent = parent.filter(|p| p.0.len() == self.patterns.len());
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p.0[i]);
            if !hit {
                // An inclusion that already matched, or an exception before anything
                // matched, cannot change the outcome: Docker skips it (and records `false`).
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path)
                    || (parent.is_none() && ancestors(path).any(|dir| pattern.matches(dir)));
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, MatchInfo(info))
    }

    /// Whether a walk must still look inside the excluded directory `dir`, because an
    /// exception could re-include something below it (fsutil's skip-dir optimisation,
    /// kept identical so that the set of files sent is the same as BuildKit's).
    pub fn may_include_below(&self, dir: &str) -> bool {
        if !self.has_exceptions() {
            return false;
        }
        if !self.only_prefix_exceptions {
            return true;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
    }
}

/// `dockerignore.ReadAll` for one non-comment line: the normalised pattern, or `None` if blank.
fn read_line(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (invert, rest) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut pattern = String::new();
    if !rest.is_empty() {
        pattern = clean(rest);
        if pattern.len() > 1 && pattern.starts_with('/') {
            pattern.remove(0);
        }
    }
    Some(if invert {
        format!("!{pattern}")
    } else {
        pattern
    })
}

/// Ancestor directories of `path`, shortest first: `a/b/c` → `a`, `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(end, _)| &path[..end])
}

/// Go's `path.Clean`: lexical normalisation of `.`, `..` and repeated slashes.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern without its `!`.
    text: String,
    exclusion: bool,
    kind: Kind,
}

/// `patternmatcher`'s match types; the non-regex ones are not just optimisations: `**foo`
/// is a plain suffix test (it matches `barfoo`), and Docker's behaviour is what we copy.
#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

impl Pattern {
    /// `patternmatcher.New` for one pattern: `None` if blank.
    fn new(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let cleaned = clean(raw);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err("illegal exclusion pattern: \"!\"".to_owned()),
            Some(rest) => (true, rest.to_owned()),
            None => (false, cleaned),
        };
        let kind = compile(&text)?;
        Ok(Some(Self {
            text,
            exclusion,
            kind,
        }))
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    fn without_trailing_glob(&self) -> &str {
        let text = self.text.strip_suffix("/**").unwrap_or(&self.text);
        text.strip_suffix("/*").unwrap_or(text)
    }
}

/// `Pattern.compile` from `moby/patternmatcher`, for `/` as the separator.
#[derive(PartialEq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

fn compile(pattern: &str) -> Result<Kind, String> {
    let mut re = String::from("^");
    let mut detected = Detected::Exact;
    let mut chars = pattern.chars().peekable();
    let mut first = true;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                detected = double_star(&mut chars, &mut re, detected, first);
            }
            '*' => {
                re.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                detected = Detected::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                escaped(chars.next(), &mut re)?;
                detected = Detected::Regex;
            }
            '[' | ']' => {
                re.push(ch);
                detected = Detected::Regex;
            }
            other => re.push(other),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_owned()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_owned()),
        Detected::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re).map_err(|e| e.to_string())?)
        }
    })
}

/// After `**` (`**/` is treated as `**`): at the end a prefix match (or any rest), at the start
/// a suffix match, else any run of directories.
fn double_star(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    re: &mut String,
    detected: Detected,
    first: bool,
) -> Detected {
    if chars.peek() == Some(&'/') {
        chars.next();
    }
    let detected = if chars.peek().is_none() {
        if detected == Detected::Exact {
            Detected::Prefix
        } else {
            re.push_str(".*");
            Detected::Regex
        }
    } else {
        re.push_str("(.*/)?");
        Detected::Regex
    };
    if first {
        Detected::Suffix
    } else {
        detected
    }
}

/// A backslash and what follows it. Go's regexp reads `\d`, `\w`... as classes and any other
/// escaped non-alphanumeric as itself; regex-lite agrees on the first and `regex_lite::escape`
/// gives the second.
fn escaped(next: Option<char>, re: &mut String) -> Result<(), String> {
    match next {
        Some(next) if next.is_ascii_alphanumeric() => {
            re.push('\\');
            re.push(next);
        }
        Some(next) => re.push_str(&regex_lite::escape(next.encode_utf8(&mut [0; 4]))),
        // filepath.Match, which patternmatcher.New calls to validate, rejects this.
        None => return Err("trailing backslash".to_owned()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from Docker's documentation ("dockerignore file" in the build context reference)
    /// and from the behaviour of the code it describes.
    /// Each row: (what it shows, .dockerignore contents, path, excluded?).
    const CASES: &[(&str, &str, &str, bool)] = &[
        ("glob in root", "*.md", "notes.md", true),
        ("`*` does not cross /", "*.md", "docs/notes.md", false),
        (
            "exception re-includes",
            "*.md\n!README.md",
            "README.md",
            false,
        ),
        ("exception is exact", "*.md\n!README.md", "CHANGES.md", true),
        ("** any depth", "**/*.go", "a/b/c/main.go", true),
        ("** zero dirs", "**/*.go", "main.go", true),
        ("** leaves others", "**/*.go", "a/b/main.rs", false),
        ("temp? one char", "temp?", "tempa", true),
        ("temp? not two chars", "temp?", "tempab", false),
        ("temp? only at root", "temp?", "dir/tempa", false),
        (
            "*/temp* one level down",
            "*/temp*",
            "somedir/temporary.txt",
            true,
        ),
        (
            "*/temp* dir excludes contents",
            "*/temp*",
            "somedir/temp/x.txt",
            true,
        ),
        ("*/temp* not at root", "*/temp*", "temporary.txt", false),
        ("*/temp* not two levels", "*/temp*", "a/b/temp", false),
        ("*/*/temp* two levels", "*/*/temp*", "a/b/temp.txt", true),
        ("leading / anchors to root", "/abs", "abs", true),
        ("leading / same as none", "/foo/bar", "foo/bar", true),
        ("unanchored is root-only", "abs", "sub/abs", false),
        ("dir/ excludes contents", "dir/", "dir/a/b.txt", true),
        ("dir excludes contents", "dir", "dir/a/b.txt", true),
        ("dir/ is only that dir", "dir/", "dirt/a.txt", false),
        (
            "last match wins (exception then re-exclude)",
            "*.md\n!README*.md\nREADME-secret.md",
            "README-secret.md",
            true,
        ),
        (
            "last match wins (exclusion overridden)",
            "*.md\n!README*.md\nREADME-secret.md",
            "README-public.md",
            false,
        ),
        (
            "last match wins (later exception)",
            "*.md\nREADME-secret.md\n!README*.md",
            "README-secret.md",
            false,
        ),
        ("comment ignored", "# *.md\n", "a.md", false),
        ("comment only at line start", "  # a.md", "# a.md", true),
        ("blank lines ignored", "\n\n   \n*.md\n\n", "a.md", true),
        ("CRLF lines", "*.md\r\n!keep.md\r\n", "keep.md", false),
        ("** alone excludes all", "**", "any/where/x", true),
        ("** with exception", "**\n!src/**", "src/lib.rs", false),
        (
            "exception under excluded dir",
            "dir\n!dir/keep.txt",
            "dir/keep.txt",
            false,
        ),
        (
            "exception under excluded dir, sibling",
            "dir\n!dir/keep.txt",
            "dir/other",
            true,
        ),
        ("cleaned: ./ and //", "./a//b/../c", "a/c", true),
        ("the pattern . is ignored", ".", "a.txt", false),
        ("? not /", "a?b", "a/b", false),
        ("character class", "file[0-9].txt", "file7.txt", true),
        (
            "negated character class",
            "file[^0-9].txt",
            "file7.txt",
            false,
        ),
        ("escaped wildcard", "\\*.txt", "*.txt", true),
        ("escaped wildcard is literal", "\\*.txt", "a.txt", false),
        ("braces are literal", "{a,b}.txt", "a.txt", false),
        ("braces are literal (match)", "{a,b}.txt", "{a,b}.txt", true),
        ("trailing ** prefix", "build/**", "build/x/y", true),
        ("**name is a suffix test", "**foo", "a/barfoo", true),
        (
            "**/name matches name at root",
            "**/node_modules",
            "node_modules/x/y.js",
            true,
        ),
        (
            "**/name matches nested",
            "**/node_modules",
            "a/node_modules/y.js",
            true,
        ),
        ("middle **", "a/**/z", "a/b/c/z", true),
        ("middle ** zero dirs", "a/**/z", "a/z", true),
        ("spaces trimmed", "   *.log   ", "x.log", true),
        ("! with spaces", "*.log\n!  keep.log", "keep.log", false),
        // BuildKit evaluates per directory level: `!x` was skipped at `x` (nothing had
        // matched yet), so for `x/f` it is tested against `x/f` only and does not apply.
        (
            "exception on parent after child exclusion",
            "x/f\n!x",
            "x/f",
            true,
        ),
        ("exception on the path itself", "x/f\n!x/f", "x/f", false),
        ("BOM dropped", "\u{feff}*.md", "a.md", true),
    ];

    #[test]
    fn dockerignore_table_follows_docker_semantics() {
        let mut failures = Vec::new();
        for (what, contents, path, want) in CASES {
            let ignore = DockerIgnore::parse(contents)
                .unwrap_or_else(|e| panic!("{what}: {contents:?} failed to parse: {e}"));
            if ignore.is_excluded(path) != *want {
                failures.push(format!(
                    "{what}: {contents:?} on {path:?}: want excluded={want}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn rejects_bare_exclamation_mark_naming_the_line() {
        let err = DockerIgnore::parse("*.md\n!\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("illegal exclusion pattern"), "{err}");
    }

    #[test]
    fn rejects_malformed_patterns() {
        for bad in ["[", "a[b", "x\\"] {
            assert!(
                DockerIgnore::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn cleans_paths_like_go() {
        for (input, want) in [
            ("", "."),
            ("a/b/", "a/b"),
            ("./a", "a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("a//b/./c/..", "a/b"),
            ("/", "/"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn skips_excluded_dirs_only_when_no_exception_can_reach_inside() {
        let literal = DockerIgnore::parse("dir\nother\n!dir/keep.txt").unwrap();
        assert!(literal.may_include_below("dir"));
        assert!(!literal.may_include_below("other"));
        let wildcard = DockerIgnore::parse("dir\n!**/keep.txt").unwrap();
        assert!(wildcard.may_include_below("dir"));
        let none = DockerIgnore::parse("dir").unwrap();
        assert!(!none.may_include_below("dir"));
    }
}
