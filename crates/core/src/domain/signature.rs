//! The registry's signature of an image (ECR managed signing with AWS Signer), as the record's
//! `image.signature` and `Build Finished` say it: ECR's signing status per signing profile
//! (DescribeImageSigningStatus) and the signature itself, an OCI referrer of the image's digest
//! (ListImageReferrers, artifact type [`NOTATION_SIGNATURE`]).

use serde::{Deserialize, Serialize};

/// The artifact type of a Notation signature: what ECR's managed signing stores as a referrer.
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignatureStatus {
    /// ECR signed the image (`COMPLETE`).
    Complete,
    /// ECR signs asynchronously after the push and had not finished when the record was written.
    InProgress,
    /// ECR's signing failed; `reason` has ECR's words.
    Failed,
    /// No signing rule matched the image (ImageSigning off), or ECR could not be asked.
    Unavailable,
}

/// `image.signature` of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSignature {
    pub status: SignatureStatus,
    /// The AWS Signer profile that signed (or is signing) the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_profile_arn: Option<String>,
    /// The signature's own digest (the referrer's manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `<repositoryUri>@<digest>` of the signature: what `notation ls` lists for the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ImageSignature {
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            status: SignatureStatus::Unavailable,
            signing_profile_arn: None,
            digest: None,
            reference: None,
            reason: Some(reason.into()),
        }
    }
}

/// One of ECR's signing statuses of an image (one per signing profile whose rule matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningState {
    /// ECR's `status`: `COMPLETE`, `IN_PROGRESS`, `FAILED` (anything else is kept as said).
    pub status: String,
    pub signing_profile_arn: Option<String>,
    /// `failureCode: failureReason` when FAILED.
    pub failure: Option<String>,
}

/// What ECR says of an image's signing: its statuses and the digests of its Notation
/// signature referrers (asked only when a status is COMPLETE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigningFacts {
    pub statuses: Vec<SigningState>,
    pub signatures: Vec<String>,
}

/// The record's verdict: a COMPLETE status wins (with the first signature referrer), then
/// FAILED, then IN_PROGRESS; no status at all means no signing rule matched the image.
pub fn summarize(facts: &SigningFacts, repository_uri: &str) -> ImageSignature {
    let with = |status: &str| facts.statuses.iter().find(|s| s.status == status);
    if let Some(done) = with("COMPLETE") {
        let digest = facts.signatures.first().cloned();
        return ImageSignature {
            status: SignatureStatus::Complete,
            signing_profile_arn: done.signing_profile_arn.clone(),
            reference: digest.as_ref().map(|d| format!("{repository_uri}@{d}")),
            reason: digest.is_none().then(|| {
                "ECR says the image is signed, but lists no signature referrer yet".to_string()
            }),
            digest,
        };
    }
    if let Some(failed) = with("FAILED") {
        return ImageSignature {
            status: SignatureStatus::Failed,
            signing_profile_arn: failed.signing_profile_arn.clone(),
            digest: None,
            reference: None,
            reason: Some(failed.failure.clone().unwrap_or_else(|| "no reason".into())),
        };
    }
    if let Some(running) = facts.statuses.first() {
        return ImageSignature {
            status: SignatureStatus::InProgress,
            signing_profile_arn: running.signing_profile_arn.clone(),
            digest: None,
            reference: None,
            reason: Some(format!(
                "ECR's signing is {} (it signs asynchronously after the push): \
                 `notation ls` on the image finds the signature once it is done",
                running.status
            )),
        };
    }
    ImageSignature::unavailable(
        "no signing rule matched the image: the stack's ImageSigning is DISABLED \
         (or the registry's signing configuration excludes the repository)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agentbuild-images";
    const PROFILE: &str = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/agentbuild";

    fn state(status: &str) -> SigningState {
        SigningState {
            status: status.into(),
            signing_profile_arn: Some(PROFILE.into()),
            failure: (status == "FAILED").then(|| "KmsError: key disabled".into()),
        }
    }

    #[test]
    fn a_complete_signature_names_its_referrer() {
        let facts = SigningFacts {
            statuses: vec![state("COMPLETE")],
            signatures: vec!["sha256:5151".into()],
        };
        let s = summarize(&facts, REPO);
        assert_eq!(s.status, SignatureStatus::Complete);
        assert_eq!(s.signing_profile_arn.as_deref(), Some(PROFILE));
        assert_eq!(s.reference, Some(format!("{REPO}@sha256:5151")));
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"status": "COMPLETE", "signingProfileArn": PROFILE,
                "digest": "sha256:5151", "reference": format!("{REPO}@sha256:5151")})
        );
    }

    #[test]
    fn a_signed_image_without_a_listed_referrer_says_so() {
        let facts = SigningFacts {
            statuses: vec![state("COMPLETE")],
            signatures: vec![],
        };
        let s = summarize(&facts, REPO);
        assert_eq!(s.status, SignatureStatus::Complete);
        assert!(s.digest.is_none() && s.reason.unwrap().contains("no signature referrer"));
    }

    #[test]
    fn failed_and_in_progress_keep_ecr_words() {
        let failed = summarize(
            &SigningFacts {
                statuses: vec![state("IN_PROGRESS"), state("FAILED")],
                signatures: vec![],
            },
            REPO,
        );
        assert_eq!(failed.status, SignatureStatus::Failed);
        assert_eq!(failed.reason.as_deref(), Some("KmsError: key disabled"));
        let running = summarize(
            &SigningFacts {
                statuses: vec![state("IN_PROGRESS")],
                signatures: vec![],
            },
            REPO,
        );
        assert_eq!(running.status, SignatureStatus::InProgress);
        assert!(running.reason.unwrap().contains("asynchronously"));
    }

    #[test]
    fn no_signing_rule_is_unavailable_with_the_reason() {
        let s = summarize(&SigningFacts::default(), REPO);
        assert_eq!(s.status, SignatureStatus::Unavailable);
        assert!(s.reason.unwrap().contains("ImageSigning is DISABLED"));
    }
}
