//! ECR's managed signing of an image as `domain::signature::SigningFacts`:
//! DescribeImageSigningStatus (one status per signing profile whose rule matched) and, once a
//! status is COMPLETE, ListImageReferrers filtered to Notation signatures (the signature is an
//! OCI referrer of the image's digest; IAM authorizes the call as `ecr:BatchGetImage`).

use super::classify;
use super::ecr::Ecr;
use crate::domain::signature::{SigningFacts, SigningState, NOTATION_SIGNATURE};
use crate::ports::ImageSignatures;
use crate::Error;
use aws_sdk_ecr::operation::describe_image_signing_status::DescribeImageSigningStatusError as E;
use aws_sdk_ecr::types::{ImageIdentifier, ListImageReferrersFilter, SubjectIdentifier};

impl ImageSignatures for Ecr {
    async fn signing(&self, repository: &str, digest: &str) -> Result<SigningFacts, Error> {
        let out = self
            .client
            .describe_image_signing_status()
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => match e.as_service_error() {
                // The image is gone (expired, or a test removed it): nothing to say of it.
                Some(E::ImageNotFoundException(_) | E::RepositoryNotFoundException(_)) => {
                    return Ok(SigningFacts::default())
                }
                _ => return Err(classify("ECR.DescribeImageSigningStatus", e)),
            },
        };
        let statuses: Vec<SigningState> = out
            .signing_statuses()
            .iter()
            .map(|s| SigningState {
                status: s.status().map_or("missing", |s| s.as_str()).to_string(),
                signing_profile_arn: s.signing_profile_arn().map(String::from),
                failure: s
                    .failure_reason()
                    .map(|r| format!("{}: {r}", s.failure_code().unwrap_or("SigningFailed"))),
            })
            .collect();
        let signatures = if statuses.iter().any(|s| s.status == "COMPLETE") {
            self.signatures(repository, digest).await?
        } else {
            Vec::new()
        };
        Ok(SigningFacts {
            statuses,
            signatures,
        })
    }
}

impl Ecr {
    /// The digests of the image's Notation signatures (the first page: one signature per
    /// signing profile, far fewer than a page).
    async fn signatures(&self, repository: &str, digest: &str) -> Result<Vec<String>, Error> {
        let out = self
            .client
            .list_image_referrers()
            .repository_name(repository)
            .subject_id(
                SubjectIdentifier::builder()
                    .image_digest(digest)
                    .build()
                    .map_err(|e| Error::InvalidState(format!("ECR.ListImageReferrers: {e}")))?,
            )
            .filter(
                ListImageReferrersFilter::builder()
                    .artifact_types(NOTATION_SIGNATURE)
                    .build(),
            )
            .max_results(50)
            .send()
            .await
            .map_err(|e| classify("ECR.ListImageReferrers", e))?;
        Ok(out
            .referrers()
            .iter()
            .filter(|r| r.artifact_type() == Some(NOTATION_SIGNATURE))
            .map(|r| r.digest().to_string())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecr::operation::describe_image_signing_status::DescribeImageSigningStatusOutput;
    use aws_sdk_ecr::operation::list_image_referrers::ListImageReferrersOutput;
    use aws_sdk_ecr::types::error::ImageNotFoundException;
    use aws_sdk_ecr::types::{ImageReferrer, ImageSigningStatus, SigningStatus};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    const DIGEST: &str = "sha256:abababababababababababababababababababababababababababababababab";
    const PROFILE: &str = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/agentbuild";

    fn status(s: SigningStatus) -> DescribeImageSigningStatusOutput {
        DescribeImageSigningStatusOutput::builder()
            .signing_statuses(
                ImageSigningStatus::builder()
                    .status(s)
                    .signing_profile_arn(PROFILE)
                    .build(),
            )
            .build()
    }

    fn referrer(digest: &str, artifact_type: &str) -> ImageReferrer {
        ImageReferrer::builder()
            .digest(digest)
            .media_type("application/vnd.oci.image.manifest.v1+json")
            .artifact_type(artifact_type)
            .size(1024)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_signed_image_yields_its_status_and_its_notation_signature() {
        let signed = mock!(aws_sdk_ecr::Client::describe_image_signing_status)
            .match_requests(|r| r.image_id().and_then(|i| i.image_digest()) == Some(DIGEST))
            .then_output(|| status(SigningStatus::Complete));
        let referrers = mock!(aws_sdk_ecr::Client::list_image_referrers)
            .match_requests(|r| {
                r.subject_id().map(|s| s.image_digest()) == Some(DIGEST)
                    && r.filter().map(|f| f.artifact_types())
                        == Some(&[NOTATION_SIGNATURE.into()][..])
            })
            .then_output(|| {
                ListImageReferrersOutput::builder()
                    .referrers(referrer("sha256:5151", NOTATION_SIGNATURE))
                    .referrers(referrer("sha256:sbom", "application/spdx+json"))
                    .build()
            });
        let client = mock_client!(aws_sdk_ecr, RuleMode::MatchAny, [&signed, &referrers]);
        let facts = Ecr::new(client)
            .signing("agentbuild", DIGEST)
            .await
            .unwrap();
        assert_eq!(facts.statuses[0].status, "COMPLETE");
        assert_eq!(
            facts.statuses[0].signing_profile_arn.as_deref(),
            Some(PROFILE)
        );
        assert_eq!(facts.signatures, ["sha256:5151"]);
        assert_eq!(referrers.num_calls(), 1);
    }

    #[tokio::test]
    async fn signing_in_progress_lists_no_referrers() {
        let running = mock!(aws_sdk_ecr::Client::describe_image_signing_status)
            .then_output(|| status(SigningStatus::InProgress));
        let referrers = mock!(aws_sdk_ecr::Client::list_image_referrers)
            .then_output(|| ListImageReferrersOutput::builder().build());
        let client = mock_client!(aws_sdk_ecr, RuleMode::MatchAny, [&running, &referrers]);
        let facts = Ecr::new(client)
            .signing("agentbuild", DIGEST)
            .await
            .unwrap();
        assert_eq!(facts.statuses[0].status, "IN_PROGRESS");
        assert!(facts.signatures.is_empty());
        assert_eq!(referrers.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_missing_image_has_no_signature_and_a_server_error_is_transient() {
        let gone = mock!(aws_sdk_ecr::Client::describe_image_signing_status).then_error(|| {
            E::ImageNotFoundException(ImageNotFoundException::builder().message("gone").build())
        });
        let client = mock_client!(aws_sdk_ecr, [&gone]);
        let facts = Ecr::new(client)
            .signing("agentbuild", DIGEST)
            .await
            .unwrap();
        assert_eq!(facts, SigningFacts::default());
        let broken = mock!(aws_sdk_ecr::Client::describe_image_signing_status)
            .sequence()
            .http_response(|| {
                aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(500).unwrap(),
                    aws_smithy_types::body::SdkBody::from("{}"),
                )
            })
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_ecr, [&broken]);
        let err = Ecr::new(client)
            .signing("agentbuild", DIGEST)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TransientAws(_)), "{err:?}");
    }
}
