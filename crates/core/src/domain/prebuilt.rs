//! Deploy what exists: a request that names an artifact this stack already made instead of a
//! source — an image `<repository>@sha256:<digest>` in the stack's repository, or a code
//! artifact version (`s3://<bucket>/artifacts/<project>/<agent>/<sha256>.zip` + `versionId`)
//! in its bucket. It builds nothing. Every door resolves the artifact to the successful build
//! that made it, through the stack's own index (`made/<project>/<agent>/…`, written when
//! that build was recorded: [`MadeBy::of`]), and deploys it as a promote of that build
//! (`domain::promote`): the same validation, never the target latest's deploy serves, never
//! `latest.json`, the same record, smoke test and history. An artifact no build of this agent
//! recorded — pushed by hand, another stack's, another agent's, an unknown version — is
//! refused naming the field.
//!
//! Form: `{"project", "agent", "prebuilt": {"image": "<repo>@sha256:<hex>"}, "deploy": {...}}`
//! or `"prebuilt": {"code": {"uri": "s3://…", "versionId": "…"}}`; `deploy` is required.

use super::deploy_request::{DeployOptions, DeployRequest};
use super::form::{from_value, string_newtype, Expecting, Object, Rule};
use super::record::BuildRecord;
use super::request::{clip, Name, RequestError, S3Uri};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The request field that names the artifact.
pub const FIELD: &str = "prebuilt";
const MAX_IMAGE_REF: usize = 512;
const MAX_VERSION_ID: usize = 1024;

string_newtype!(
    /// `<registry>/<repository>@sha256:<64 lowercase hex>`: an image by digest (a tag can move).
    ImageRef,
    image_ref_rule
);

fn image_ref_rule(s: &str) -> Result<(), Rule> {
    let rule = "must be <registry>/<repository>@sha256:<64 lowercase hex digits> \
                (an image by digest; a tag can move)";
    let Some((repository, hex)) = s.split_once("@sha256:") else {
        return Err(rule.into());
    };
    let repository_ok = !repository.is_empty()
        && s.len() <= MAX_IMAGE_REF
        && repository.contains('/')
        && repository
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-/:".contains(&c))
        && !repository.split('/').any(str::is_empty);
    if repository_ok && is_sha256_hex(hex) {
        Ok(())
    } else {
        Err(rule.into())
    }
}

impl ImageRef {
    /// The repository URI (`<registry>/<repository>`).
    pub fn repository(&self) -> &str {
        self.0.split_once('@').map_or("", |(r, _)| r)
    }

    /// `sha256:<hex>`, as ECR and the record write a digest.
    pub fn digest(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }

    fn hex(&self) -> &str {
        self.digest().trim_start_matches("sha256:")
    }
}

string_newtype!(
    /// An S3 object version id: 1 to 1024 of letters, digits and `.`, `_`, `-`, `+`, `/`, `=`.
    VersionId,
    version_id_rule
);

fn version_id_rule(s: &str) -> Result<(), Rule> {
    let ok = !s.is_empty()
        && s.len() <= MAX_VERSION_ID
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-+/=".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(
            "must be an S3 version id: 1 to 1024 of letters, digits, '.', '_', '-', '+', '/', '='"
                .into(),
        )
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// One version of a code artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeVersion {
    pub uri: S3Uri,
    pub version_id: VersionId,
}

impl Expecting for CodeVersion {
    const EXPECTING: &'static str = "an object {uri, versionId}";
}

/// What a request names instead of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prebuilt {
    Image(ImageRef),
    Code(CodeVersion),
}

impl Prebuilt {
    /// The field a refusal names.
    pub fn field(&self) -> &'static str {
        match self {
            Prebuilt::Image(_) => "prebuilt.image",
            Prebuilt::Code(_) => "prebuilt.code",
        }
    }

    /// How a refusal quotes it: the digest whole (validated hex), the caller's other text
    /// clipped.
    fn shown(&self) -> String {
        match self {
            Prebuilt::Image(i) => format!("{}@{}", clip(i.repository()), i.digest()),
            Prebuilt::Code(c) => {
                format!(
                    "{} version {}",
                    clip(&c.uri.to_string()),
                    clip(&c.version_id)
                )
            }
        }
    }

    /// Its name in the stack's index: `image-<digest hex>`, or for a code artifact
    /// `code-<artifact sha256>-<SHA-256 of the version id, 32 hex>` (a forced rebuild uploads
    /// the same bytes again as a new version of the same key: each version is its own entry).
    fn index_name(&self) -> String {
        match self {
            Prebuilt::Image(image) => format!("image-{}", image.hex()),
            Prebuilt::Code(code) => {
                let file = code.uri.key().rsplit('/').next().unwrap_or_default();
                let version = hex::encode(Sha256::digest(code.version_id.as_bytes()));
                format!("code-{}-{}", file.trim_end_matches(".zip"), &version[..32])
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactForm {
    #[serde(default)]
    image: Option<ImageRef>,
    #[serde(default)]
    code: Option<Object<CodeVersion>>,
}

impl Expecting for ArtifactForm {
    const EXPECTING: &'static str = "an object naming one of image, code";
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Form {
    project: Name,
    agent: Name,
    prebuilt: Object<ArtifactForm>,
    #[serde(default)]
    deploy: Option<Object<DeployRequest>>,
}

impl Expecting for Form {
    const EXPECTING: &'static str = "a JSON object";
}

/// A request that names an existing artifact, in form (the stack's rules: [`Self::admit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrebuiltRequest {
    pub project: Name,
    pub agent: Name,
    pub prebuilt: Prebuilt,
    pub deploy: DeployOptions,
}

/// Whether `input` is a request naming an existing artifact (rather than a source).
pub fn names_prebuilt(input: &Value) -> bool {
    input.as_object().is_some_and(|o| o.contains_key(FIELD))
}

/// The form rules: exactly one of `prebuilt.image`, `prebuilt.code`; `deploy` required (with
/// its own rules). Every rejection names its field.
pub fn parse(input: &Value) -> Result<PrebuiltRequest, RequestError> {
    let form = from_value::<Object<Form>>(input, "")?.0;
    let prebuilt = match (form.prebuilt.0.image, form.prebuilt.0.code) {
        (Some(image), None) => Prebuilt::Image(image),
        (None, Some(Object(code))) => Prebuilt::Code(code),
        _ => {
            return Err(RequestError::new(
                FIELD,
                "must name exactly one of image (<repository>@sha256:<digest>) or code \
                 ({uri, versionId})",
            ))
        }
    };
    let Some(Object(deploy)) = form.deploy else {
        return Err(RequestError::new(
            "deploy",
            "is required: a request naming an existing artifact deploys it",
        ));
    };
    Ok(PrebuiltRequest {
        project: form.project,
        agent: form.agent,
        prebuilt,
        deploy: deploy.into_options()?,
    })
}

impl PrebuiltRequest {
    /// The stack's rules: an image in the stack's repository; a code artifact in the stack's
    /// bucket under this agent's `artifacts/<project>/<agent>/<sha256>.zip`.
    pub fn admit(&self, repository_uri: &str, own_bucket: &str) -> Result<(), RequestError> {
        match &self.prebuilt {
            Prebuilt::Image(image) if image.repository() != repository_uri => {
                Err(RequestError::new(
                    "prebuilt.image",
                    format!("must be an image in this stack's repository {repository_uri}"),
                ))
            }
            Prebuilt::Code(code) => {
                let prefix = format!("artifacts/{}/{}/", self.project, self.agent);
                let name = code.uri.key().strip_prefix(&prefix);
                let named = name
                    .and_then(|n| n.strip_suffix(".zip"))
                    .is_some_and(is_sha256_hex);
                if code.uri.bucket() != own_bucket || !named {
                    return Err(RequestError::new(
                        "prebuilt.code.uri",
                        format!(
                            "must be s3://{own_bucket}/{prefix}<sha256>.zip (a code artifact \
                             this stack made for this agent)"
                        ),
                    ));
                }
                Ok(())
            }
            Prebuilt::Image(_) => Ok(()),
        }
    }

    /// Where the stack's index says which build made the named artifact.
    pub fn index_key(&self) -> String {
        made_key(&self.project, &self.agent, &self.prebuilt)
    }

    /// The build `entry` names, when the entry is about exactly this artifact (this
    /// repository, this version), else the refusal naming the field.
    pub fn made_by<'a>(&self, entry: Option<&'a MadeBy>) -> Result<&'a str, RequestError> {
        let same = entry.is_some_and(|e| match &self.prebuilt {
            Prebuilt::Image(image) => e.image.as_deref() == Some(image.as_ref()),
            Prebuilt::Code(code) => e.code.as_ref() == Some(code),
        });
        match entry {
            Some(e) if same => Ok(&e.build_id),
            _ => Err(RequestError::new(
                self.prebuilt.field(),
                format!(
                    "{} is no artifact a recorded build of {}/{} made in this stack",
                    self.prebuilt.shown(),
                    self.project,
                    self.agent
                ),
            )),
        }
    }
}

/// `made/<project>/<agent>/<index name>.json`: a prefix of its own, so that the index (one
/// entry per success) never lengthens the fleet's listing of `agents/`.
fn made_key(project: &str, agent: &str, artifact: &Prebuilt) -> String {
    format!("made/{project}/{agent}/{}.json", artifact.index_name())
}

/// The index entry: which successful build made an artifact (the first one recorded; a later
/// build of the same content REUSED it, and any success of it deploys the same bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MadeBy {
    pub build_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeVersion>,
}

impl MadeBy {
    /// The index key and entry a final record adds: a success that made (or reused) an image
    /// with a digest or a code artifact version. A promote made nothing: `None`.
    pub fn of(record: &BuildRecord) -> Option<(String, MadeBy)> {
        if !record.status.is_success() || record.promoted_from.is_some() {
            return None;
        }
        let (p, a) = (record.project.as_str(), record.agent.as_str());
        if let Some(art) = record.artifact.as_ref().filter(|a| !a.kind.is_container()) {
            let code = CodeVersion {
                uri: S3Uri::try_from(art.uri.clone()).ok()?,
                version_id: VersionId::try_from(art.version_id.clone()?).ok()?,
            };
            let key = made_key(p, a, &Prebuilt::Code(code.clone()));
            let entry = MadeBy {
                build_id: record.build_id.clone(),
                image: None,
                code: Some(code),
            };
            return Some((key, entry));
        }
        let digest = record.image.digest.as_deref()?;
        let image = ImageRef::try_from(format!("{}@{digest}", record.image.repository_uri)).ok()?;
        let key = made_key(p, a, &Prebuilt::Image(image.clone()));
        let entry = MadeBy {
            build_id: record.build_id.clone(),
            image: Some(image.into()),
            code: None,
        };
        Some((key, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REPO: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agentbuild-agents";
    const HEX: &str = "3f2a1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e";

    fn image_request(image: &str) -> Value {
        json!({"project": "nexus-ai", "agent": "sales", "prebuilt": {"image": image},
               "deploy": {"endpoint": "staging"}})
    }

    fn code_request(uri: &str, version: &str) -> Value {
        json!({"project": "nexus-ai", "agent": "sales",
               "prebuilt": {"code": {"uri": uri, "versionId": version}}, "deploy": {}})
    }

    #[test]
    fn reads_an_image_by_digest_or_a_code_version_with_deploy_required() {
        let r = parse(&image_request(&format!("{REPO}@sha256:{HEX}"))).unwrap();
        assert_eq!(r.prebuilt.field(), "prebuilt.image");
        assert_eq!(r.deploy.endpoint.as_deref(), Some("staging"));
        assert_eq!(r.admit(REPO, "data"), Ok(()));
        assert_eq!(
            r.index_key(),
            format!("made/nexus-ai/sales/image-{HEX}.json")
        );
        let uri = format!("s3://data/artifacts/nexus-ai/sales/{HEX}.zip");
        let c = parse(&code_request(&uri, "v1/+=.x")).unwrap();
        assert_eq!(c.admit(REPO, "data"), Ok(()));
        let key = c.index_key();
        assert!(
            key.starts_with(&format!("made/nexus-ai/sales/code-{HEX}-")),
            "{key}"
        );
        let v2 = parse(&code_request(&uri, "v2")).unwrap();
        assert_ne!(
            v2.index_key(),
            key,
            "each version of the key is its own entry"
        );
        let mut no_deploy = image_request(&format!("{REPO}@sha256:{HEX}"));
        no_deploy.as_object_mut().unwrap().remove("deploy");
        assert_eq!(parse(&no_deploy).unwrap_err().field, "deploy");
    }

    #[test]
    fn refuses_a_tag_a_bad_digest_both_or_neither_and_a_source_beside_it() {
        for (bad, field) in [
            (image_request(&format!("{REPO}:latest")), "prebuilt.image"),
            (
                image_request(&format!("{REPO}@sha256:{}", &HEX[1..])),
                "prebuilt.image",
            ),
            (
                image_request(&format!("{REPO}@sha256:{}", HEX.to_uppercase())),
                "prebuilt.image",
            ),
            (
                image_request(&format!("agentbuild-agents@sha256:{HEX}")),
                "prebuilt.image",
            ),
            (
                image_request(&format!("{REPO}$(id)@sha256:{HEX}")),
                "prebuilt.image",
            ),
            (
                json!({"project": "p", "agent": "a", "prebuilt": {}, "deploy": {}}),
                "prebuilt",
            ),
            (
                json!({"project": "p", "agent": "a", "deploy": {},
                       "prebuilt": {"image": format!("{REPO}@sha256:{HEX}"),
                                    "code": {"uri": "s3://data/a.zip", "versionId": "v"}}}),
                "prebuilt",
            ),
            (
                code_request("s3://data/x.zip", "v\n1"),
                "prebuilt.code.versionId",
            ),
            (code_request("https://x/y.zip", "v"), "prebuilt.code.uri"),
        ] {
            let err = parse(&bad).unwrap_err();
            assert_eq!(err.field, field, "{bad}: {err}");
        }
        let mut with_source = image_request(&format!("{REPO}@sha256:{HEX}"));
        with_source["source"] = json!("s3://data/sources/nexus-ai/sales/x.zip");
        assert_eq!(parse(&with_source).unwrap_err().field, "source");
    }

    #[test]
    fn only_the_stacks_repository_and_this_agents_artifacts_are_admitted() {
        let other_repo = parse(&image_request(&format!(
            "999999999999.dkr.ecr.eu-west-1.amazonaws.com/agentbuild-agents@sha256:{HEX}"
        )))
        .unwrap();
        let err = other_repo.admit(REPO, "data").unwrap_err();
        assert_eq!(err.field, "prebuilt.image");
        assert!(err.message.contains(REPO), "{err}");
        for uri in [
            format!("s3://other/artifacts/nexus-ai/sales/{HEX}.zip"),
            format!("s3://data/artifacts/nexus-ai/other/{HEX}.zip"),
            format!("s3://data/sources/nexus-ai/sales/{HEX}.zip"),
            "s3://data/artifacts/nexus-ai/sales/x.zip".to_string(),
        ] {
            let r = parse(&code_request(&uri, "v1")).unwrap();
            assert_eq!(
                r.admit(REPO, "data").unwrap_err().field,
                "prebuilt.code.uri",
                "{uri}"
            );
        }
    }

    #[test]
    fn the_index_answers_only_for_this_very_artifact() {
        let r = parse(&image_request(&format!("{REPO}@sha256:{HEX}"))).unwrap();
        let entry = MadeBy {
            build_id: "b-1".into(),
            image: Some(format!("{REPO}@sha256:{HEX}")),
            code: None,
        };
        assert_eq!(r.made_by(Some(&entry)), Ok("b-1"));
        let err = r.made_by(None).unwrap_err();
        assert_eq!(err.field, "prebuilt.image");
        assert!(err.message.contains("nexus-ai/sales"), "{err}");
        let uri = format!("s3://data/artifacts/nexus-ai/sales/{HEX}.zip");
        let c = parse(&code_request(&uri, "v2")).unwrap();
        let v1 = MadeBy {
            build_id: "b-1".into(),
            image: None,
            code: Some(CodeVersion {
                uri: S3Uri::try_from(uri.clone()).unwrap(),
                version_id: VersionId::try_from("v1".to_string()).unwrap(),
            }),
        };
        assert_eq!(c.made_by(Some(&v1)).unwrap_err().field, "prebuilt.code");
        assert!(
            r.made_by(Some(&v1)).is_err(),
            "an image is not a code entry"
        );
    }

    #[test]
    fn a_success_indexes_what_it_made_a_promote_or_failure_nothing() {
        use crate::domain::record::tests::{plan, t};
        use crate::domain::record::BuildState;
        use crate::domain::status::BuildStatus;
        let mut b = BuildState::starting(t("2026-11-28T10:00:00Z"));
        b.status = BuildStatus::Succeeded;
        b.image_digest = Some(format!("sha256:{HEX}"));
        let p = plan();
        let record = BuildRecord::new(&p, Some(&b), None, t("2026-11-28T10:05:00Z"));
        let (key, entry) = MadeBy::of(&record).expect("a success with a digest is indexed");
        assert_eq!(key, format!("made/nexus-ai/sales/image-{HEX}.json"));
        assert_eq!(entry.build_id, record.build_id);
        let asked = PrebuiltRequest {
            project: Name::try_from(record.project.clone()).unwrap(),
            agent: Name::try_from(record.agent.clone()).unwrap(),
            prebuilt: Prebuilt::Image(ImageRef::try_from(entry.image.clone().unwrap()).unwrap()),
            deploy: serde_json::from_value(json!({"protocol": "HTTP", "networkMode": "PUBLIC"}))
                .unwrap(),
        };
        assert_eq!(asked.index_key(), key);
        let mut promote = record.clone();
        promote.promoted_from = Some("b-0".into());
        assert_eq!(MadeBy::of(&promote), None);
        let mut failed = record;
        failed.status = BuildStatus::Failed;
        assert_eq!(MadeBy::of(&failed), None);
    }
}
