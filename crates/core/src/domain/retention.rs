//! Which uploads expire: every upload under `sources/` expires (the bucket's lifecycle: its
//! current version after `SourcesExpireDays`, a noncurrent version 30 days later) unless the
//! service holds it. The writer of an agent's `latest.json` puts an S3 Object Lock legal hold
//! on the source version that record names and lifts it from the one it replaced: S3 never
//! deletes a held version (lifecycle included), so an upload a `latest.json` names is kept
//! whatever its age — scheduled rebuilds need it — and uploaders send plain uploads (no tag,
//! no header: multipart uploads and copies work as every AWS client sends them). The bucket
//! policy lets only the service's roles place or lift a hold.

use super::plan::Source;

/// One hold to place or lift after `latest.json` moved from `previous` to `new` (sources in the
/// stack's own bucket only: other buckets' lifecycles are not ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retag {
    pub key: String,
    /// The version the record names (the one validated and built), not the key's current one:
    /// an upload to the same key later is another version, with its own hold.
    pub version_id: Option<String>,
    /// Held (kept) or not (expires as any upload).
    pub latest: bool,
}

/// The new source version is kept; the replaced one, if it is another object version, may
/// expire again.
pub fn retags(own_bucket: &str, previous: Option<&Source>, new: &Source) -> Vec<Retag> {
    let retag = |s: &Source, latest| Retag {
        key: s.key.clone(),
        version_id: s.version_id.clone(),
        latest,
    };
    let mut out = Vec::new();
    if new.bucket == own_bucket {
        out.push(retag(new, true));
    }
    if let Some(p) = previous {
        if p.bucket == own_bucket && !same_version(p, new) {
            out.push(retag(p, false));
        }
    }
    out
}

/// Whether two sources name one object version.
pub fn same_version(a: &Source, b: &Source) -> bool {
    a.bucket == b.bucket && a.key == b.key && a.version_id == b.version_id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(bucket: &str, key: &str) -> Source {
        Source {
            uri: format!("s3://{bucket}/{key}"),
            bucket: bucket.into(),
            key: key.into(),
            sha256: "0".repeat(64),
            version_id: None,
        }
    }

    #[test]
    fn the_named_source_is_kept_and_the_replaced_one_may_expire() {
        let old = source("own", "sources/p/a/1.zip");
        let new = source("own", "sources/p/a/2.zip");
        assert_eq!(
            retags("own", Some(&old), &new),
            [
                Retag {
                    key: new.key.clone(),
                    version_id: None,
                    latest: true
                },
                Retag {
                    key: old.key.clone(),
                    version_id: None,
                    latest: false
                }
            ]
        );
        assert_eq!(
            retags("own", None, &new),
            [Retag {
                key: new.key.clone(),
                version_id: None,
                latest: true
            }]
        );
    }

    #[test]
    fn a_rebuild_of_the_same_source_never_untags_it() {
        let s = source("own", "sources/p/a/1.zip");
        assert_eq!(
            retags("own", Some(&s), &s),
            [Retag {
                key: s.key.clone(),
                version_id: None,
                latest: true
            }]
        );
    }

    #[test]
    fn the_validated_version_is_tagged_and_an_older_version_of_the_same_key_untagged() {
        let mut old = source("own", "sources/p/a/1.zip");
        old.version_id = Some("v1".into());
        let mut new = old.clone();
        new.version_id = Some("v2".into());
        let tags = retags("own", Some(&old), &new);
        let tagged: Vec<_> = tags
            .iter()
            .map(|r| (r.version_id.as_deref(), r.latest))
            .collect();
        assert_eq!(tagged, [(Some("v2"), true), (Some("v1"), false)]);
    }

    #[test]
    fn other_buckets_are_not_ours_to_tag() {
        let old = source("other", "sources/p/a/1.zip");
        let new = source("other", "sources/p/a/2.zip");
        assert!(retags("own", Some(&old), &new).is_empty());
    }
}
