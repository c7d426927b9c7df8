//! Which uploads expire: every upload under `sources/` carries the tag `agentbuild:latest`,
//! `false` when uploaded; the writer of an agent's `latest.json` sets it `true` on the source
//! that record names and back to `false` on the one it replaced. The bucket's lifecycle rule
//! expires only `false` (S3 lifecycle filters cannot say "not tagged"), so an upload that a
//! `latest.json` names never expires, whatever its age — scheduled rebuilds need it.

use super::plan::Source;

/// The tag key (template.yaml's ExpireSources rule and bucket policy name it too).
pub const LATEST_TAG: &str = "agentbuild:latest";

/// `x-amz-tagging` of an upload (URL-encoded, as the header wants): expirable until named.
pub const UPLOAD_TAGGING: &str = "agentbuild%3Alatest=false";

/// One tag to set after `latest.json` moved from `previous` to `new` (sources in the stack's
/// own bucket only: other buckets' lifecycles are not ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retag {
    pub key: String,
    /// The version the record names (the one validated and built), not the key's current one:
    /// an upload to the same key later is another version, with its own tag.
    pub version_id: Option<String>,
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

    #[test]
    fn the_upload_tagging_is_the_tag_key_set_to_false() {
        assert_eq!(
            UPLOAD_TAGGING.replace("%3A", ":"),
            format!("{LATEST_TAG}=false")
        );
    }
}
