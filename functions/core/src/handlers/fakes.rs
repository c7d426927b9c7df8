//! In-memory ports for handler tests (the SDK adapters have their own aws-smithy-mocks tests).

use crate::ports::{BuildInfo, BuildService, ObjectMeta, ObjectStore, StartRequest};
use crate::Error;
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};

#[derive(Default)]
pub struct FakeStore {
    /// (bucket, key) -> (bytes, S3 checksum)
    objects: RefCell<BTreeMap<(String, String), (Vec<u8>, Option<String>)>>,
    calls: Cell<usize>,
    pub puts: RefCell<Vec<String>>,
    /// Errors returned by the next calls, in order.
    pub fail_next: RefCell<VecDeque<Error>>,
}

pub const OWN: &str = "own";

impl FakeStore {
    pub fn with_object(self, bucket: &str, key: &str, body: &[u8]) -> Self {
        self.objects
            .borrow_mut()
            .insert((bucket.into(), key.into()), (body.to_vec(), None));
        self
    }

    pub fn set_checksum(&self, bucket: &str, key: &str, sha: &str) {
        if let Some(o) = self
            .objects
            .borrow_mut()
            .get_mut(&(bucket.into(), key.into()))
        {
            o.1 = Some(sha.into());
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.get()
    }

    pub fn own(&self, key: &str) -> Option<Vec<u8>> {
        self.objects
            .borrow()
            .get(&(OWN.into(), key.into()))
            .map(|o| o.0.clone())
    }

    pub fn own_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.own(key).map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn enter(&self) -> Result<(), Error> {
        self.calls.set(self.calls.get() + 1);
        match self.fail_next.borrow_mut().pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl ObjectStore for FakeStore {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, Error> {
        self.enter()?;
        Ok(self
            .objects
            .borrow()
            .get(&(bucket.into(), key.into()))
            .map(|(b, c)| ObjectMeta {
                size: b.len() as u64,
                sha256: c.clone(),
            }))
    }

    async fn sha256(&self, bucket: &str, key: &str) -> Result<String, Error> {
        self.enter()?;
        let objects = self.objects.borrow();
        let (body, _) = objects
            .get(&(bucket.into(), key.into()))
            .ok_or_else(|| Error::AwsService("NoSuchKey".into()))?;
        Ok(hex::encode(Sha256::digest(body)))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.enter()?;
        Ok(self.own(key))
    }

    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), Error> {
        self.enter()?;
        self.puts.borrow_mut().push(key.to_string());
        self.objects
            .borrow_mut()
            .insert((OWN.into(), key.into()), (body, None));
        Ok(())
    }
}

#[derive(Default)]
pub struct FakeBuilds {
    pub started: RefCell<Vec<StartRequest>>,
    pub stopped: RefCell<Vec<String>>,
    pub builds: RefCell<BTreeMap<String, BuildInfo>>,
}

impl BuildService for FakeBuilds {
    async fn start(&self, req: &StartRequest) -> Result<String, Error> {
        self.started.borrow_mut().push(req.clone());
        Ok(format!("proj:{}", self.started.borrow().len()))
    }

    async fn get(&self, id: &str) -> Result<Option<BuildInfo>, Error> {
        Ok(self.builds.borrow().get(id).cloned())
    }

    async fn stop(&self, id: &str) -> Result<(), Error> {
        self.stopped.borrow_mut().push(id.to_string());
        Ok(())
    }
}
