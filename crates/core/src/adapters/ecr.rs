//! ECR: whether an image still exists (REUSED names only images that do), and the kept tags
//! that protect the images agents' `latest.json` name from the lifecycle policy
//! (`domain::images`).

use super::classify;
use crate::ports::{ImageId, Images};
use crate::Error;
use aws_sdk_ecr::operation::batch_get_image::BatchGetImageOutput;
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::operation::put_image::PutImageError;
use aws_sdk_ecr::types::{ImageFailure, ImageFailureCode, ImageIdentifier};

/// The manifest types BatchGetImage may answer with: all a buildx push makes, so the manifest
/// comes back byte for byte and a tag added with it names the very same digest.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

pub struct Ecr {
    pub(super) client: aws_sdk_ecr::Client,
}

impl Ecr {
    pub fn new(client: aws_sdk_ecr::Client) -> Self {
        Self { client }
    }

    async fn manifest(&self, image: &ImageId) -> Result<BatchGetImageOutput, Error> {
        let mut req = self
            .client
            .batch_get_image()
            .repository_name(&image.repository)
            .image_ids(by_tag(&image.tag));
        for t in MANIFEST_TYPES {
            req = req.accepted_media_types(*t);
        }
        req.send()
            .await
            .map_err(|e| classify("ECR.BatchGetImage", e))
    }
}

fn by_tag(tag: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(tag).build()
}

fn not_found(f: &ImageFailure) -> bool {
    matches!(f.failure_code(), Some(ImageFailureCode::ImageNotFound))
}

/// A batch call's failure for the one image it named, other than "not found", as an error.
fn failed(operation: &str, failures: &[ImageFailure]) -> Result<(), Error> {
    match failures.iter().find(|f| !not_found(f)) {
        None => Ok(()),
        Some(f) => Err(Error::AwsService(format!(
            "{operation}: {}: {}",
            f.failure_code().map_or("unknown", |c| c.as_str()),
            f.failure_reason().unwrap_or("no reason")
        ))),
    }
}

impl Images for Ecr {
    async fn digest(&self, image: &ImageId) -> Result<Option<String>, Error> {
        let out = self
            .client
            .describe_images()
            .repository_name(&image.repository)
            .image_ids(by_tag(&image.tag))
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .image_details()
                .iter()
                .find_map(|d| d.image_digest().map(String::from))),
            Err(e) => match e.as_service_error() {
                Some(DescribeImagesError::ImageNotFoundException(_))
                | Some(DescribeImagesError::RepositoryNotFoundException(_)) => Ok(None),
                _ => Err(classify("ECR.DescribeImages", e)),
            },
        }
    }

    async fn add_tag(&self, image: &ImageId, tag: &str) -> Result<bool, Error> {
        let out = self.manifest(image).await?;
        failed("ECR.BatchGetImage", out.failures())?;
        let Some(found) = out.images().first() else {
            return Ok(false);
        };
        let (Some(manifest), Some(digest)) = (
            found.image_manifest(),
            found.image_id().and_then(|i| i.image_digest()),
        ) else {
            return Err(Error::AwsService(format!(
                "ECR.BatchGetImage: {} came back without its manifest",
                image.tag
            )));
        };
        let put = self
            .client
            .put_image()
            .repository_name(&image.repository)
            .image_manifest(manifest)
            .set_image_manifest_media_type(found.image_manifest_media_type().map(String::from))
            .image_digest(digest)
            .image_tag(tag)
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            // This image has that tag already (an earlier try).
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutImageError::ImageAlreadyExistsException(_))
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(classify("ECR.PutImage", e)),
        }
    }

    async fn remove_tag(&self, image: &ImageId) -> Result<(), Error> {
        let out = self
            .client
            .batch_delete_image()
            .repository_name(&image.repository)
            .image_ids(by_tag(&image.tag))
            .send()
            .await
            .map_err(|e| classify("ECR.BatchDeleteImage", e))?;
        failed("ECR.BatchDeleteImage", out.failures())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecr::operation::batch_delete_image::BatchDeleteImageOutput;
    use aws_sdk_ecr::operation::describe_images::DescribeImagesOutput;
    use aws_sdk_ecr::operation::put_image::PutImageOutput;
    use aws_sdk_ecr::types::error::{
        ImageAlreadyExistsException, ImageNotFoundException, RepositoryNotFoundException,
    };
    use aws_sdk_ecr::types::{Image, ImageDetail};
    use aws_sdk_ecr::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn image() -> ImageId {
        ImageId {
            repository: "agents".into(),
            tag: "nexus-ai.sales-abc".into(),
        }
    }

    fn asks_for_the_tag(ids: &[ImageIdentifier]) -> bool {
        ids.len() == 1 && ids[0].image_tag() == Some("nexus-ai.sales-abc")
    }

    #[tokio::test]
    async fn digest_describes_the_image_by_its_tag() {
        let rule = mock!(Client::describe_images)
            .match_requests(|r| {
                r.repository_name() == Some("agents") && asks_for_the_tag(r.image_ids())
            })
            .then_output(|| {
                DescribeImagesOutput::builder()
                    .image_details(ImageDetail::builder().image_digest("sha256:aa").build())
                    .build()
            });
        let ecr = Ecr::new(mock_client!(aws_sdk_ecr, [&rule]));
        assert_eq!(
            ecr.digest(&image()).await.unwrap().as_deref(),
            Some("sha256:aa")
        );
    }

    #[tokio::test]
    async fn a_missing_image_or_repository_is_none() {
        let image_gone = mock!(Client::describe_images).then_error(|| {
            DescribeImagesError::ImageNotFoundException(
                ImageNotFoundException::builder().message("gone").build(),
            )
        });
        let repo_gone = mock!(Client::describe_images).then_error(|| {
            DescribeImagesError::RepositoryNotFoundException(
                RepositoryNotFoundException::builder()
                    .message("gone")
                    .build(),
            )
        });
        let ecr = Ecr::new(mock_client!(
            aws_sdk_ecr,
            RuleMode::Sequential,
            [&image_gone, &repo_gone]
        ));
        assert_eq!(ecr.digest(&image()).await.unwrap(), None);
        assert_eq!(ecr.digest(&image()).await.unwrap(), None);
    }

    fn throttled() -> aws_smithy_runtime_api::http::Response {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ),
        )
    }

    #[tokio::test]
    async fn throttling_is_retried_by_the_sdk_and_transient_past_its_retries() {
        let once = mock!(Client::describe_images)
            .sequence()
            .http_response(throttled)
            .output(|| {
                DescribeImagesOutput::builder()
                    .image_details(ImageDetail::builder().image_digest("sha256:aa").build())
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_ecr, RuleMode::Sequential, [&once], |c| c
            .retry_config(
                aws_sdk_ecr::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            ));
        assert!(Ecr::new(client).digest(&image()).await.unwrap().is_some());
        assert_eq!(once.num_calls(), 2);

        let always = mock!(Client::describe_images)
            .sequence()
            .http_response(throttled)
            .repeatedly()
            .build();
        let ecr = Ecr::new(mock_client!(aws_sdk_ecr, [&always]));
        let err = ecr.digest(&image()).await.unwrap_err();
        assert_eq!(err.name(), "TransientAwsError");
    }

    #[tokio::test]
    async fn add_tag_puts_the_same_manifest_and_digest_under_the_new_tag() {
        let get = mock!(Client::batch_get_image)
            .match_requests(|r| asks_for_the_tag(r.image_ids()))
            .then_output(|| {
                BatchGetImageOutput::builder()
                    .images(
                        Image::builder()
                            .image_id(
                                ImageIdentifier::builder()
                                    .image_tag("nexus-ai.sales-abc")
                                    .image_digest("sha256:aa")
                                    .build(),
                            )
                            .image_manifest("{\"m\":1}")
                            .image_manifest_media_type("application/vnd.oci.image.index.v1+json")
                            .build(),
                    )
                    .build()
            });
        let put = mock!(Client::put_image)
            .match_requests(|r| {
                r.image_manifest() == Some("{\"m\":1}")
                    && r.image_digest() == Some("sha256:aa")
                    && r.image_tag() == Some("KEPT.nexus-ai.sales-abc")
                    && r.image_manifest_media_type()
                        == Some("application/vnd.oci.image.index.v1+json")
            })
            .then_output(|| PutImageOutput::builder().build());
        let again = mock!(Client::put_image).then_error(|| {
            PutImageError::ImageAlreadyExistsException(
                ImageAlreadyExistsException::builder()
                    .message("exists")
                    .build(),
            )
        });
        let ecr = Ecr::new(mock_client!(
            aws_sdk_ecr,
            RuleMode::MatchAny,
            [&get, &put, &again]
        ));
        assert!(ecr
            .add_tag(&image(), "KEPT.nexus-ai.sales-abc")
            .await
            .unwrap());
        assert!(
            ecr.add_tag(&image(), "KEPT.nexus-ai.sales-abc")
                .await
                .unwrap(),
            "a tag it has already is no error"
        );
        assert_eq!(put.num_calls() + again.num_calls(), 2);
    }

    #[tokio::test]
    async fn add_tag_of_a_missing_image_is_false_and_remove_tag_of_a_missing_tag_is_no_error() {
        let missing = || {
            ImageFailure::builder()
                .failure_code(ImageFailureCode::ImageNotFound)
                .failure_reason("Requested image not found")
                .build()
        };
        let get = mock!(Client::batch_get_image)
            .then_output(move || BatchGetImageOutput::builder().failures(missing()).build());
        let delete = mock!(Client::batch_delete_image)
            .match_requests(|r| asks_for_the_tag(r.image_ids()))
            .then_output(move || {
                BatchDeleteImageOutput::builder()
                    .failures(missing())
                    .build()
            });
        let ecr = Ecr::new(mock_client!(aws_sdk_ecr, [&get, &delete]));
        assert!(!ecr.add_tag(&image(), "KEPT.x").await.unwrap());
        ecr.remove_tag(&image()).await.unwrap();
        assert_eq!(delete.num_calls(), 1);
    }

    #[tokio::test]
    async fn another_batch_failure_is_an_error() {
        let kms = mock!(Client::batch_delete_image).then_output(|| {
            BatchDeleteImageOutput::builder()
                .failures(
                    ImageFailure::builder()
                        .failure_code(ImageFailureCode::KmsError)
                        .failure_reason("key disabled")
                        .build(),
                )
                .build()
        });
        let ecr = Ecr::new(mock_client!(aws_sdk_ecr, [&kms]));
        let err = ecr.remove_tag(&image()).await.unwrap_err();
        assert_eq!(err.name(), "AwsServiceError");
        assert!(err.to_string().contains("key disabled"), "{err}");
    }
}
