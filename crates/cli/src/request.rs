//! Turning flags or a request file into one build request in form — with the same types every
//! door reads it through (`agentbuild_core::domain::request::parse`). The stack's policy (which
//! buckets, which runtime roles) is the stack's to apply: the CLI does not guess it.

use std::io::Read;
use std::path::{Path, PathBuf};

use agentbuild_core::domain::json::{parse_request, JsonError, MAX_REQUEST_BYTES};
use agentbuild_core::domain::request::{parse, parse_except_source, ValidRequest};
use serde_json::{json, Map, Value};

use crate::service::Rejection;

/// The code of a request over [`MAX_REQUEST_BYTES`], as the API's 413 names it.
pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";

/// Where the build context comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// Already uploaded.
    S3(String),
    /// A local directory, to be packed and uploaded: as given, and the paths it may mean.
    Local {
        given: String,
        candidates: Vec<PathBuf>,
    },
}

impl SourceSpec {
    /// The first candidate that is a directory.
    pub fn local_dir(&self) -> Result<Option<PathBuf>, Rejection> {
        let SourceSpec::Local { given, candidates } = self else {
            return Ok(None);
        };
        if let Some(dir) = candidates.iter().find(|p| p.is_dir()) {
            return Ok(Some(dir.clone()));
        }
        let message = if given.contains("://") {
            format!("`{given}` must be an s3:// URI or a local directory")
        } else {
            let tried: Vec<_> = candidates.iter().map(|p| p.display().to_string()).collect();
            format!(
                "`{given}` is neither an s3:// URI nor a directory (looked for {})",
                tried.join(" and ")
            )
        };
        Err(Rejection::invalid("source", message))
    }
}

/// A request before its source is resolved: the JSON object, and where the source is.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub fields: Map<String, Value>,
    /// `None` when the request has no usable `source`: validation will say why.
    pub source: Option<SourceSpec>,
}

/// The flags of `submit <dir>`.
#[derive(Debug, Clone, Default)]
pub struct FlagRequest {
    pub dir: PathBuf,
    pub project: String,
    pub agent: String,
    pub dockerfile: String,
    pub platform: String,
    pub build_args: Vec<(String, String)>,
    /// `code` for a code artifact; `None` for the default (container).
    pub artifact: Option<String>,
    pub entry_point: Option<String>,
    pub runtime: Option<String>,
    /// `ID=<Secrets Manager ARN>` pairs: references, never values.
    pub build_secrets: Vec<(String, String)>,
}

/// Pairs as a JSON object (a key twice: the last wins, as in the CLI's flags).
fn object_of(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

impl Draft {
    pub fn from_flags(f: &FlagRequest) -> Self {
        let mut fields = Map::new();
        fields.insert("project".into(), json!(f.project));
        fields.insert("agent".into(), json!(f.agent));
        fields.insert("dockerfile".into(), json!(f.dockerfile));
        fields.insert("platform".into(), json!(f.platform));
        for (field, value) in [
            ("artifact", &f.artifact),
            ("entryPoint", &f.entry_point),
            ("runtime", &f.runtime),
        ] {
            if let Some(v) = value {
                fields.insert(field.into(), json!(v));
            }
        }
        if !f.build_args.is_empty() {
            fields.insert("buildArgs".into(), object_of(&f.build_args));
        }
        if !f.build_secrets.is_empty() {
            fields.insert("buildSecrets".into(), object_of(&f.build_secrets));
        }
        Self {
            fields,
            source: Some(SourceSpec::Local {
                given: f.dir.display().to_string(),
                candidates: vec![f.dir.clone()],
            }),
        }
    }

    /// Reads a request file. A local `source` is resolved against the file's directory first,
    /// then `cwd`. A file that cannot be read, is over [`MAX_REQUEST_BYTES`], is not JSON, names
    /// a key twice or is not a JSON object is a rejection naming `request` (or the duplicated
    /// key's path), as the API would answer.
    pub fn from_file(path: &Path, cwd: &Path) -> Result<Self, Rejection> {
        let bytes = read_request(path)?;
        let value = parse_request(&bytes).map_err(|e| match e {
            JsonError::Duplicate(d) => Rejection::from(d),
            JsonError::TooLarge(_) => too_large(path, None),
            JsonError::Malformed(m) => Rejection::invalid(
                "request",
                format!("{} is not valid JSON: {m}", path.display()),
            ),
        })?;
        let Value::Object(fields) = value else {
            return Err(Rejection::invalid(
                "request",
                format!("{} must hold a JSON object", path.display()),
            ));
        };
        let base = path
            .parent()
            .map(|p| cwd.join(p))
            .unwrap_or_else(|| cwd.into());
        let source = match fields.get("source") {
            Some(Value::String(s)) if s.starts_with("s3://") => Some(SourceSpec::S3(s.clone())),
            // Looked up only after the other fields validated (`SourceSpec::local_dir`).
            Some(Value::String(s)) => Some(SourceSpec::Local {
                given: s.clone(),
                candidates: candidates(Path::new(s), &base, cwd),
            }),
            _ => None,
        };
        Ok(Self { fields, source })
    }

    /// `--force` and `--idempotency-key` on the command line apply to any request.
    pub fn apply_overrides(&mut self, force: bool, idempotency_key: Option<&str>) {
        if force {
            self.fields.insert("force".into(), Value::Bool(true));
        }
        if let Some(key) = idempotency_key {
            self.fields.insert("idempotencyKey".into(), json!(key));
        }
    }

    /// `--deploy` and its flags: merged into the request's `deploy` object (a request file's
    /// own `deploy` fields stay unless a flag names them).
    pub fn apply_deploy(
        &mut self,
        runtime_name: Option<&str>,
        protocol: Option<&str>,
        env: &[(String, String)],
    ) {
        let deploy = self
            .fields
            .entry("deploy")
            .or_insert_with(|| Value::Object(Map::new()));
        if !deploy.is_object() {
            // Not an object: leave it for validation to name.
            return;
        }
        if let Some(name) = runtime_name {
            deploy["runtimeName"] = json!(name);
        }
        if let Some(protocol) = protocol {
            deploy["protocol"] = json!(protocol);
        }
        if !env.is_empty() {
            let vars = deploy
                .as_object_mut()
                .expect("an object")
                .entry("environmentVariables")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(vars) = vars.as_object_mut() {
                for (k, v) in env {
                    vars.insert(k.clone(), json!(v));
                }
            }
        }
    }

    /// The draft with `source` set to `uri`.
    pub fn with_source(&self, uri: &str) -> Value {
        let mut fields = self.fields.clone();
        fields.insert("source".into(), json!(uri));
        Value::Object(fields)
    }

    /// The request in form when its source is in S3; `None` when it is a local directory,
    /// whose other fields have passed every rule then (it is packed, and the request read
    /// once more with the upload's URI, only after that).
    pub fn validate_before_upload(&self) -> Result<Option<ValidRequest>, Rejection> {
        match &self.source {
            Some(SourceSpec::S3(uri)) => self.parse_with_source(uri).map(Some),
            Some(SourceSpec::Local { .. }) => {
                parse_except_source(&Value::Object(self.fields.clone()))?;
                Ok(None)
            }
            None => {
                parse_except_source(&Value::Object(self.fields.clone()))?;
                Err(Rejection::invalid(
                    "source",
                    "must be an s3:// URI or a local directory",
                ))
            }
        }
    }

    /// The request with its source at `uri`, read through the request's types.
    pub fn parse_with_source(&self, uri: &str) -> Result<ValidRequest, Rejection> {
        parse(&self.with_source(uri)).map_err(Into::into)
    }

    /// A field that passed [`Draft::validate_before_upload`] as text (the project, agent and
    /// Dockerfile a local context is packed and keyed by); `default` when not given.
    pub fn text<'a>(&'a self, field: &str, default: &'a str) -> &'a str {
        self.fields
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or(default)
    }
}

/// At most [`MAX_REQUEST_BYTES`] + 1 bytes of a request file: enough to tell one that is too
/// large without reading it all.
fn read_request(path: &Path) -> Result<Vec<u8>, Rejection> {
    let unreadable = |e: std::io::Error| {
        Rejection::invalid("request", format!("cannot read {}: {e}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    if let Some(size) = size.filter(|&n| n > MAX_REQUEST_BYTES as u64) {
        return Err(too_large(path, Some(size)));
    }
    let mut bytes = Vec::new();
    file.take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    Ok(bytes)
}

/// The CLI's word for the API's 413.
fn too_large(path: &Path, size: Option<u64>) -> Rejection {
    let size = match size {
        Some(n) => format!("{n} bytes"),
        None => format!("over {MAX_REQUEST_BYTES} bytes"),
    };
    Rejection {
        code: PAYLOAD_TOO_LARGE.into(),
        field: "request".into(),
        message: format!(
            "{} is {size}; a request is at most {MAX_REQUEST_BYTES} bytes (64 KiB)",
            path.display()
        ),
    }
}

/// The paths a relative local source may mean: beside the request file, then the cwd.
fn candidates(raw: &Path, base: &Path, cwd: &Path) -> Vec<PathBuf> {
    let mut out = vec![base.join(raw)];
    if raw.is_relative() && base != cwd {
        out.push(cwd.join(raw));
    }
    out
}

/// `sources/<project>/<agent>/<sha256>.zip`, where `submit` uploads a packed context.
pub fn source_key(project: &str, agent: &str, sha256: &str) -> String {
    format!("sources/{project}/{agent}/{sha256}.zip")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_s3_source_in_a_request_file_is_used_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "r.json",
            r#"{"project":"demo","agent":"a","source":"s3://other-bucket/sources/demo/a/a.zip"}"#,
        );
        let draft = Draft::from_file(&file, dir.path()).unwrap();
        assert_eq!(
            draft.source,
            Some(SourceSpec::S3(
                "s3://other-bucket/sources/demo/a/a.zip".into()
            ))
        );
        // Another bucket is the server's to allow; every source must be under the request's
        // own sources/<project>/<agent>/.
        let ok = draft.validate_before_upload().unwrap().unwrap();
        assert_eq!(ok.source.bucket(), "other-bucket");
        let own = Draft::from_file(
            &write(
                dir.path(),
                "own.json",
                r#"{"project":"demo","agent":"a","source":"s3://agentbuild-local/x/a.zip"}"#,
            ),
            dir.path(),
        )
        .unwrap();
        let err = own.validate_before_upload().unwrap_err();
        assert_eq!(err.field, "source");
    }

    #[test]
    fn a_local_source_resolves_beside_the_request_file_first_then_the_cwd() {
        let root = tempfile::tempdir().unwrap();
        let requests = root.path().join("examples/requests");
        write(
            root.path(),
            "examples/sample-agent/Dockerfile",
            "FROM scratch\n",
        );
        write(root.path(), "agent-in-cwd/Dockerfile", "FROM scratch\n");
        let local = |name: &str, source: &str| {
            let text = format!(r#"{{"project":"demo","agent":"a","source":"{source}"}}"#);
            let draft = Draft::from_file(&write(&requests, name, &text), root.path()).unwrap();
            draft.source.unwrap().local_dir()
        };
        assert_eq!(
            local("sample.json", "../sample-agent").unwrap(),
            Some(requests.join("../sample-agent"))
        );
        assert_eq!(
            local("cwd.json", "agent-in-cwd").unwrap(),
            Some(root.path().join("agent-in-cwd"))
        );
        let abs = root.path().join("agent-in-cwd");
        assert_eq!(local("abs.json", abs.to_str().unwrap()).unwrap(), Some(abs));
        assert_eq!(
            SourceSpec::S3("s3://b/k.zip".into()).local_dir().unwrap(),
            None
        );
    }

    #[test]
    fn a_missing_local_source_is_rejected_naming_both_places_looked() {
        let root = tempfile::tempdir().unwrap();
        let file = write(
            &root.path().join("req"),
            "r.json",
            r#"{"project":"demo","agent":"a","source":"nowhere"}"#,
        );
        let draft = Draft::from_file(&file, root.path()).unwrap();
        let err = draft.source.unwrap().local_dir().unwrap_err();
        assert_eq!(err.field, "source");
        assert!(err.message.contains("req/nowhere"), "{}", err.message);
        assert!(err.message.contains(" and "), "{}", err.message);
        let file = write(
            root.path(),
            "url.json",
            r#"{"project":"demo","agent":"a","source":"https://example.com/x.zip"}"#,
        );
        let draft = Draft::from_file(&file, root.path()).unwrap();
        let err = draft.source.unwrap().local_dir().unwrap_err();
        assert!(
            err.message.contains("must be an s3:// URI"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_fields_are_rejected_before_the_source_is_looked_at() {
        let root = tempfile::tempdir().unwrap();
        let file = write(
            root.path(),
            "r.json",
            r#"{"project":"demo","agent":"Sample_Agent","source":"does-not-exist"}"#,
        );
        let draft = Draft::from_file(&file, root.path()).unwrap();
        let err = draft.validate_before_upload().unwrap_err();
        assert_eq!(err.field, "agent");
        assert_eq!(err.code, "InvalidRequest");
    }

    #[test]
    fn unusable_request_files_name_the_request_or_the_source() {
        let root = tempfile::tempdir().unwrap();
        for (text, field) in [
            ("not json", "request"),
            ("[1]", "request"),
            (r#"{"project":"demo","agent":"a"}"#, "source"),
            (r#"{"project":"demo","agent":"a","source":7}"#, "source"),
            (
                r#"{"project":"demo","agent":"a","source":"s3://bkt/sources/demo/a/x.zip","extra":1}"#,
                "extra",
            ),
            // Fields are judged in the order they are written: the first broken one is named.
            (
                r#"{"project":"demo","agent":"a","source":"s3://b","extra":1}"#,
                "source",
            ),
        ] {
            let file = write(root.path(), "r.json", text);
            let err = Draft::from_file(&file, root.path())
                .and_then(|d| d.validate_before_upload())
                .unwrap_err();
            assert_eq!(err.field, field, "{text}");
        }
        let err = Draft::from_file(&root.path().join("missing.json"), root.path()).unwrap_err();
        assert_eq!(err.field, "request");
    }

    #[test]
    fn a_request_file_naming_a_key_twice_is_rejected_naming_the_key() {
        let root = tempfile::tempdir().unwrap();
        for (text, field) in [
            (
                r#"{"project":"demo","agent":"a","source":"s3://b/k.zip","force":false,"force":true}"#,
                "force",
            ),
            (
                r#"{"project":"demo","agent":"a","source":"s3://b/k.zip","buildArgs":{"A":"1","A":"2"}}"#,
                "buildArgs.A",
            ),
        ] {
            let file = write(root.path(), "dup.json", text);
            let err = Draft::from_file(&file, root.path()).unwrap_err();
            assert_eq!(
                (err.code.as_str(), err.field.as_str()),
                ("InvalidRequest", field),
                "{text}"
            );
            assert!(err.message.contains("twice"), "{}", err.message);
        }
    }

    #[test]
    fn a_request_file_over_64_kib_is_rejected_and_one_at_the_limit_is_read() {
        let root = tempfile::tempdir().unwrap();
        let body = r#"{"project":"demo","agent":"a","source":"s3://b/k.zip"}"#;
        let at_limit = format!("{body}{}", " ".repeat(MAX_REQUEST_BYTES - body.len()));
        let file = write(root.path(), "max.json", &at_limit);
        assert!(Draft::from_file(&file, root.path()).is_ok());

        let file = write(root.path(), "big.json", &format!("{at_limit} "));
        let err = Draft::from_file(&file, root.path()).unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.field.as_str()),
            (PAYLOAD_TOO_LARGE, "request")
        );
        assert!(err.message.contains("65537 bytes"), "{}", err.message);
    }

    #[test]
    fn a_huge_request_file_is_refused_by_its_size_before_it_is_read() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("huge.json");
        // Sparse: 1 GiB of NULs that reading would have to go through.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let err = Draft::from_file(&path, root.path()).unwrap_err();
        assert_eq!(err.code, PAYLOAD_TOO_LARGE);
        assert!(err.message.contains("1073741824 bytes"), "{}", err.message);
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_request_stream_is_read_only_up_to_the_limit() {
        let dev = Path::new("/dev/zero");
        let err = Draft::from_file(dev, dev.parent().unwrap()).unwrap_err();
        assert_eq!(err.code, PAYLOAD_TOO_LARGE);
        assert!(
            err.message
                .contains(&format!("over {MAX_REQUEST_BYTES} bytes")),
            "{}",
            err.message
        );
    }

    #[test]
    fn flags_make_the_same_request_as_a_file() {
        let draft = Draft::from_flags(&FlagRequest {
            dir: "ctx".into(),
            project: "demo".into(),
            agent: "a".into(),
            dockerfile: "Dockerfile".into(),
            platform: "linux/arm64".into(),
            build_args: vec![("A".into(), "1".into()), ("A".into(), "2".into())],
            build_secrets: vec![(
                "PYPI".into(),
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:agentbuild/pypi".into(),
            )],
            ..Default::default()
        });
        assert_eq!(
            draft.validate_before_upload().unwrap(),
            None,
            "packed first"
        );
        let key = source_key("demo", "a", &"0f".repeat(32));
        let valid = draft
            .parse_with_source(&format!("s3://agentbuild-local/{key}"))
            .unwrap();
        assert_eq!(
            valid.build_args.as_map()["A"],
            "2",
            "the last --build-arg wins"
        );
        assert!(valid.build_secrets.as_map()["PYPI"].ends_with("secret:agentbuild/pypi"));
        let mut bad = draft.clone();
        bad.fields.insert("buildArgs".into(), json!({"1A": "x"}));
        assert_eq!(
            bad.validate_before_upload().unwrap_err().field,
            "buildArgs.1A",
            "reported before anything is packed"
        );
        bad.fields
            .insert("buildSecrets".into(), json!({"PYPI": "hunter2"}));
        bad.fields.remove("buildArgs");
        assert_eq!(
            bad.validate_before_upload().unwrap_err().field,
            "buildSecrets.PYPI",
            "a value where a reference belongs"
        );
    }
}
