//! The names a code artifact may hold, and what the context may not put at its root.

/// Why an entry name cannot be unpacked safely, if it cannot: it must be a relative UTF-8 path
/// with `/` separators and no `.`, `..` or empty component (a trailing `/` marks a directory).
pub(crate) fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty entry name");
    }
    if name.contains('\0') || name.contains('\\') {
        return Some("NUL or backslash in the entry name");
    }
    let bytes = name.as_bytes();
    if name.starts_with('/')
        || (bytes.len() > 1 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic())
    {
        return Some("absolute path");
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    for part in body.split('/') {
        match part {
            ".." => return Some("`..` in the path (it would unpack outside the code directory)"),
            "." | "" => return Some("`.` or empty component in the path"),
            _ => {}
        }
    }
    None
}

/// The importable top-level name an entry provides: `pkg/x.py` → `pkg`, `six.py` → `six`,
/// `_cffi.cpython-312-aarch64-linux-gnu.so` → `_cffi`.
pub(crate) fn top_level(name: &str) -> &str {
    match name.split_once('/') {
        Some((dir, _)) => dir,
        None => {
            let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
            stem.split_once('.').map_or(stem, |(s, _)| s)
        }
    }
}

/// What happens to a context file that Python would treat specially on the runtime.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Special {
    /// Bytecode (`__pycache__/`, `*.pyc`, `*.pyo`): dropped. It is compiled for some other
    /// interpreter and could differ from the source next to it; the runtime compiles the source.
    Drop,
    /// Refused, with why.
    Refuse(&'static str),
}

/// `sitecustomize.py`, `usercustomize.py`, `*.pth` and `*.dist-info`/`*.egg-info` at the root
/// would act at interpreter start-up (site hooks) or pose as installed packages (entry points)
/// on the runtime — before or beside the entry point. Deeper in the tree they are inert (Python
/// reads them only from a site directory) and are copied as plain files.
pub(crate) fn special(name: &str) -> Option<Special> {
    if name.split('/').any(|p| p == "__pycache__")
        || name.ends_with(".pyc")
        || name.ends_with(".pyo")
    {
        return Some(Special::Drop);
    }
    let root = name.split('/').next().unwrap_or(name);
    let at_root = !name.contains('/');
    if at_root && (name == "sitecustomize.py" || name == "usercustomize.py") {
        return Some(Special::Refuse("a site hook at the code root would run at interpreter start-up on the runtime, before the entry point: move its code into the entry point"));
    }
    if at_root && name.ends_with(".pth") {
        return Some(Special::Refuse("a .pth file at the code root would be executed by Python's site module on the runtime: remove it"));
    }
    if root.ends_with(".dist-info") || root.ends_with(".egg-info") {
        return Some(Special::Refuse("package metadata at the code root would pose as an installed package (entry points, plugins) on the runtime: dependencies come from requirements only"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_absolute_and_escaping_names() {
        for name in [
            "/etc/passwd",
            "C:/x",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a\\b",
            "",
            "..",
            "a/..",
        ] {
            assert!(unsafe_name(name).is_some(), "{name}");
        }
        for name in ["main.py", "pkg/", "pkg/a.py", "..hidden", "a..b/c"] {
            assert_eq!(unsafe_name(name), None, "{name}");
        }
    }

    #[test]
    fn finds_top_level_names() {
        assert_eq!(top_level("strands/agent.py"), "strands");
        assert_eq!(top_level("six.py"), "six");
        assert_eq!(
            top_level("_cffi_backend.cpython-312-aarch64-linux-gnu.so"),
            "_cffi_backend"
        );
        assert_eq!(top_level("README"), "README");
    }

    #[test]
    fn classifies_special_files() {
        assert_eq!(
            special("__pycache__/main.cpython-312.pyc"),
            Some(Special::Drop)
        );
        assert_eq!(special("pkg/__pycache__/x"), Some(Special::Drop));
        assert_eq!(special("old.pyc"), Some(Special::Drop));
        assert!(matches!(
            special("sitecustomize.py"),
            Some(Special::Refuse(_))
        ));
        assert!(matches!(
            special("usercustomize.py"),
            Some(Special::Refuse(_))
        ));
        assert!(matches!(special("evil.pth"), Some(Special::Refuse(_))));
        assert!(matches!(
            special("fake-1.0.dist-info/entry_points.txt"),
            Some(Special::Refuse(_))
        ));
        assert_eq!(special("pkg/sitecustomize.py"), None);
        assert_eq!(special("pkg/x.pth"), None);
        assert_eq!(special("main.py"), None);
    }
}
