//! Where the CLI's settings come from, most specific first: command-line flags, the real
//! environment, then an env file (`--env-file`, by default the local stack's `.local/env` found in
//! the current directory or a parent), so that after `make local-up` every command just works.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::CliError;

/// The env file `local/stack.py up` writes, relative to the repository root.
pub const LOCAL_ENV_FILE: &str = ".local/env";

pub const API_URL: &str = "AGENTBUILD_API_URL";
pub const BUCKET: &str = "AGENTBUILD_BUCKET";
pub const STATE_MACHINE_ARN: &str = "AGENTBUILD_STATE_MACHINE_ARN";

/// Configuration flags every command takes (like the AWS CLI's).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Configuration")]
pub struct GlobalArgs {
    /// AWS profile (default: $AWS_PROFILE, then the SDK's default chain).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, then the profile's).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint (default: $AWS_ENDPOINT_URL; the local stack's moto).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// KEY=VALUE lines read after the real environment (default: .local/env in the current
    /// directory or a parent, when there is one).
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Read no env file.
    #[arg(long, global = true, conflicts_with = "env_file")]
    pub no_env_file: bool,
    /// The agentbuild API (default: $AGENTBUILD_API_URL). Without one (or with `--api-url ''`),
    /// builds are started and followed directly through Step Functions and S3.
    #[arg(long, global = true, value_name = "URL")]
    pub api_url: Option<String>,
    /// The stack's bucket: sources are uploaded to it, records read from it
    /// (default: $AGENTBUILD_BUCKET).
    #[arg(long, global = true, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The build state machine, used when no API is configured
    /// (default: $AGENTBUILD_STATE_MACHINE_ARN).
    #[arg(long, global = true, value_name = "ARN")]
    pub state_machine_arn: Option<String>,
}

/// Static credentials read from the env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// The resolved settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Only when the env file has them and nothing more specific chose credentials.
    pub credentials: Option<FileCredentials>,
    pub api_url: Option<String>,
    pub bucket: Option<String>,
    pub state_machine_arn: Option<String>,
    /// The env file that was read, if any.
    pub env_file: Option<PathBuf>,
}

/// An env file's variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    pub path: PathBuf,
    pub vars: BTreeMap<String, String>,
}

impl EnvFile {
    pub fn read(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
            path: path.to_path_buf(),
            source,
        })?;
        let vars = parse_env(&text)
            .map_err(|(line, why)| CliError::Config(format!("{}:{line}: {why}", path.display())))?;
        Ok(Self {
            path: path.to_path_buf(),
            vars,
        })
    }
}

/// `KEY=VALUE` lines; blank lines and `#` comments are skipped, an `export ` prefix and one pair
/// of matching quotes around the value are dropped. Errors are (1-based line, reason).
pub fn parse_env(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut vars = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err((index + 1, "expected KEY=VALUE".into()));
        };
        let key = key.trim();
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err((index + 1, format!("`{key}` is not a variable name")));
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
            .unwrap_or(value);
        vars.insert(key.to_owned(), unquoted.to_owned());
    }
    Ok(vars)
}

/// `.local/env` in `start` or the nearest parent that has one.
pub fn find_local_env(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(LOCAL_ENV_FILE))
        .find(|path| path.is_file())
}

/// The env file to read: the one named, none, or the local stack's when there is one.
pub fn env_file_for(args: &GlobalArgs, cwd: &Path) -> Result<Option<EnvFile>, CliError> {
    if args.no_env_file {
        return Ok(None);
    }
    match &args.env_file {
        Some(path) => EnvFile::read(path).map(Some),
        None => find_local_env(cwd).map(|p| EnvFile::read(&p)).transpose(),
    }
}

impl Settings {
    /// Flags, then `env` (the real environment), then the env file; an empty value unsets.
    pub fn resolve(
        args: &GlobalArgs,
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&EnvFile>,
    ) -> Self {
        let real = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        let from_file = |key: &str| {
            file.and_then(|f| f.vars.get(key))
                .filter(|v| !v.trim().is_empty())
                .cloned()
        };
        // The first layer that sets a key decides; set to "" it means "none" (so
        // `--api-url ''` goes straight to Step Functions even when .local/env names an API).
        let pick = |flag: &Option<String>, keys: &[&str]| {
            let layers = [
                flag.clone(),
                keys.iter().find_map(|k| env(k)),
                keys.iter()
                    .find_map(|k| file.and_then(|f| f.vars.get(*k)).cloned()),
            ];
            layers
                .into_iter()
                .flatten()
                .next()
                .filter(|v| !v.trim().is_empty())
        };
        // The file's keys stand in for the environment's: they apply unless a profile was
        // chosen on the command line or the real environment has credentials of its own.
        let credentials = match (&args.profile, real("AWS_ACCESS_KEY_ID")) {
            (None, None) => match (
                from_file("AWS_ACCESS_KEY_ID"),
                from_file("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Some(access_key_id), Some(secret_access_key)) => Some(FileCredentials {
                    access_key_id,
                    secret_access_key,
                    session_token: from_file("AWS_SESSION_TOKEN"),
                }),
                _ => None,
            },
            _ => None,
        };
        Settings {
            profile: pick(&args.profile, &["AWS_PROFILE"]),
            region: pick(&args.region, &["AWS_REGION", "AWS_DEFAULT_REGION"]),
            endpoint_url: pick(&args.endpoint_url, &["AWS_ENDPOINT_URL"]),
            credentials,
            api_url: pick(&args.api_url, &[API_URL]).map(|u| u.trim_end_matches('/').to_owned()),
            bucket: pick(&args.bucket, &[BUCKET]),
            state_machine_arn: pick(&args.state_machine_arn, &[STATE_MACHINE_ARN]),
            env_file: file.map(|f| f.path.clone()),
        }
    }

    /// The bucket, or what to do to get one.
    pub fn require_bucket(&self) -> Result<&str, CliError> {
        self.bucket.as_deref().ok_or_else(|| {
            CliError::Config(
                "no bucket configured: run `make local-up` (it writes .local/env), or pass \
                 --bucket / set AGENTBUILD_BUCKET to the stack's bucket"
                    .into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn file(text: &str) -> EnvFile {
        EnvFile {
            path: PathBuf::from(".local/env"),
            vars: parse_env(text).unwrap(),
        }
    }

    const LOCAL: &str = "AWS_ENDPOINT_URL=http://127.0.0.1:5000\nAWS_REGION=us-east-1\n\
        AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n\
        AGENTBUILD_BUCKET=agentbuild-local\n\
        AGENTBUILD_STATE_MACHINE_ARN=arn:aws:states:us-east-1:123456789012:stateMachine:agentbuild-build\n\
        AGENTBUILD_API_URL=http://127.0.0.1:9000/lambda-url/api/\n";

    #[test]
    fn parses_key_value_lines_comments_export_and_quotes() {
        let vars = parse_env(
            "# written by local/stack.py\n\nA=1\nexport B = two words \nC=\"quoted=x\"\nD='x'\nE=\nURL=http://h:1/p?q=1\r\n",
        )
        .unwrap();
        let want: BTreeMap<_, _> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "quoted=x"),
            ("D", "x"),
            ("E", ""),
            ("URL", "http://h:1/p?q=1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(vars, want);
    }

    #[test]
    fn names_the_line_of_a_malformed_env_file() {
        assert_eq!(
            parse_env("A=1\njust words\n").unwrap_err(),
            (2, "expected KEY=VALUE".to_string())
        );
        assert_eq!(parse_env("1A=x").unwrap_err().0, 1);
        assert_eq!(parse_env("A B=x").unwrap_err().0, 1);
    }

    #[test]
    fn the_local_env_file_configures_everything() {
        let s = Settings::resolve(&GlobalArgs::default(), &env_of(&[]), Some(&file(LOCAL)));
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert_eq!(s.bucket.as_deref(), Some("agentbuild-local"));
        assert_eq!(
            s.api_url.as_deref(),
            Some("http://127.0.0.1:9000/lambda-url/api"),
            "trailing slash dropped"
        );
        assert!(s.state_machine_arn.unwrap().ends_with(":agentbuild-build"));
        assert_eq!(
            s.credentials,
            Some(FileCredentials {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
                session_token: None
            })
        );
        assert_eq!(s.env_file, Some(PathBuf::from(".local/env")));
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let args = GlobalArgs {
            bucket: Some("from-flag".into()),
            ..Default::default()
        };
        let env = env_of(&[
            ("AGENTBUILD_BUCKET", "from-env"),
            ("AWS_REGION", "eu-west-1"),
            ("AGENTBUILD_API_URL", ""),
        ]);
        let s = Settings::resolve(&args, &env, Some(&file(LOCAL)));
        assert_eq!(s.bucket.as_deref(), Some("from-flag"));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        // Set to "", a variable says "none": the file's API is not used.
        assert_eq!(s.api_url, None);
        let no_api = GlobalArgs {
            api_url: Some(String::new()),
            ..Default::default()
        };
        let s = Settings::resolve(&no_api, &env_of(&[]), Some(&file(LOCAL)));
        assert_eq!(s.api_url, None);
        assert!(s.state_machine_arn.is_some());
        let s = Settings::resolve(&GlobalArgs::default(), &env, Some(&file(LOCAL)));
        assert_eq!(s.bucket.as_deref(), Some("from-env"));
    }

    #[test]
    fn file_credentials_yield_to_a_profile_flag_or_real_credentials() {
        let args = GlobalArgs {
            profile: Some("prod".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&args, &env_of(&[]), Some(&file(LOCAL)));
        assert_eq!(s.credentials, None);
        assert_eq!(s.profile.as_deref(), Some("prod"));
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        let s = Settings::resolve(&GlobalArgs::default(), &env, Some(&file(LOCAL)));
        assert_eq!(s.credentials, None, "the SDK reads the real ones itself");
    }

    #[test]
    fn region_falls_back_to_aws_default_region() {
        let env = env_of(&[("AWS_DEFAULT_REGION", "ap-southeast-2")]);
        let s = Settings::resolve(&GlobalArgs::default(), &env, None);
        assert_eq!(s.region.as_deref(), Some("ap-southeast-2"));
    }

    #[test]
    fn finds_the_local_env_file_in_a_parent_directory() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("examples/sample-agent");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(find_local_env(&nested), None);
        std::fs::create_dir_all(root.path().join(".local")).unwrap();
        std::fs::write(root.path().join(LOCAL_ENV_FILE), LOCAL).unwrap();
        let found = find_local_env(&nested).unwrap();
        assert_eq!(found, root.path().join(LOCAL_ENV_FILE));
        let read = env_file_for(&GlobalArgs::default(), &nested)
            .unwrap()
            .unwrap();
        assert_eq!(read.vars["AGENTBUILD_BUCKET"], "agentbuild-local");
        let none = GlobalArgs {
            no_env_file: true,
            ..Default::default()
        };
        assert_eq!(env_file_for(&none, &nested).unwrap(), None);
    }

    #[test]
    fn a_named_env_file_must_exist() {
        let args = GlobalArgs {
            env_file: Some("/nonexistent/env".into()),
            ..Default::default()
        };
        let err = env_file_for(&args, Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/env"), "{err}");
    }

    #[test]
    fn missing_bucket_says_what_to_do() {
        let err = Settings::default().require_bucket().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("make local-up") && msg.contains("--bucket"),
            "{msg}"
        );
    }
}
