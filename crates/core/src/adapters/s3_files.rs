//! S3 objects to and from local files: code artifacts and dependency layers (up to 250 MB)
//! stream through Lambda's /tmp, never through memory.

use super::classify;
use super::s3::S3Store;
use crate::ports::ObjectFiles;
use crate::Error;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use std::io::Write;
use std::path::Path;

impl ObjectFiles for S3Store {
    async fn download(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        path: &Path,
    ) -> Result<Option<String>, Error> {
        let got = self
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(String::from))
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(GetObjectError::is_no_such_key)
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(classify("S3.GetObject", e)),
        };
        let version = out.version_id().map(String::from);
        let local = |e: std::io::Error| Error::InvalidState(format!("{}: {e}", path.display()));
        let mut file = std::fs::File::create(path).map_err(local)?;
        let mut body = out.body;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| Error::TransientAws(format!("S3.GetObject body: {e}")))?;
            file.write_all(&chunk).map_err(local)?;
        }
        file.flush().map_err(local)?;
        Ok(Some(version.unwrap_or_default()))
    }

    async fn upload(&self, key: &str, path: &Path, sha256: &str) -> Result<Option<String>, Error> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| Error::InvalidState(format!("{}: {e}", path.display())))?;
        let digest = hex::decode(sha256)
            .map_err(|e| Error::InvalidState(format!("sha256 {sha256}: {e}")))?;
        let out = self
            .client()
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type("application/zip")
            .checksum_sha256(aws_smithy_types::base64::encode(digest))
            .body(body)
            .send()
            .await
            .map_err(|e| classify("S3.PutObject", e))?;
        Ok(out.version_id().map(String::from))
    }
}
