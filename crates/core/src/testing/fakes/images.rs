//! ECR images in memory: tags -> digests.

use super::record;
use crate::domain::signature::SigningFacts;
use crate::ports::{ImageId, ImageSignatures, Images};
use crate::Error;
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct FakeImages {
    /// `repository:tag` -> digest.
    pub tags: RefCell<BTreeMap<String, String>>,
    /// What ECR says of every image's signing (none matched a rule by default).
    pub signing: RefCell<SigningFacts>,
    /// The `repository@digest` signing was asked about.
    pub signing_asked: RefCell<Vec<String>>,
}

fn key(repository: &str, tag: &str) -> String {
    format!("{repository}:{tag}")
}

impl FakeImages {
    pub fn push(&self, repository: &str, tag: &str, digest: &str) {
        self.tags
            .borrow_mut()
            .insert(key(repository, tag), digest.into());
    }

    pub fn has(&self, repository: &str, tag: &str) -> bool {
        self.tags.borrow().contains_key(&key(repository, tag))
    }
}

impl Images for FakeImages {
    async fn digest(&self, image: &ImageId) -> Result<Option<String>, Error> {
        record("ECR.DescribeImages");
        Ok(self
            .tags
            .borrow()
            .get(&key(&image.repository, &image.tag))
            .cloned())
    }

    async fn add_tag(&self, image: &ImageId, tag: &str) -> Result<bool, Error> {
        record("ECR.BatchGetImage");
        let Some(digest) = self.digest_of(image) else {
            return Ok(false);
        };
        record("ECR.PutImage");
        self.push(&image.repository, tag, &digest);
        Ok(true)
    }

    async fn remove_tag(&self, image: &ImageId) -> Result<(), Error> {
        record("ECR.BatchDeleteImage");
        self.tags
            .borrow_mut()
            .remove(&key(&image.repository, &image.tag));
        Ok(())
    }
}

impl FakeImages {
    fn digest_of(&self, image: &ImageId) -> Option<String> {
        self.tags
            .borrow()
            .get(&key(&image.repository, &image.tag))
            .cloned()
    }
}

impl ImageSignatures for FakeImages {
    async fn signing(&self, repository: &str, digest: &str) -> Result<SigningFacts, Error> {
        record("ECR.DescribeImageSigningStatus");
        self.signing_asked
            .borrow_mut()
            .push(format!("{repository}@{digest}"));
        let facts = self.signing.borrow().clone();
        if facts.statuses.iter().any(|s| s.status == "COMPLETE") {
            record("ECR.ListImageReferrers");
        }
        Ok(facts)
    }
}
