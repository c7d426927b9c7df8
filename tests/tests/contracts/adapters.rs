//! The adapters' source against the catalog: every SDK operation they send has an IAM action.

use agentbuild_core::testing::catalog::OPERATION_ACTIONS;
use agentbuild_tests::read;
use std::collections::BTreeSet;

/// `list_objects_v2` -> `ListObjectsV2`, the operation's name in the SDK and in IAM docs.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `Service.Operation` for each `.client.<operation>()` in an adapter, rustfmt's line breaks
/// included.
fn operations_called(file: &str, service: &str) -> BTreeSet<String> {
    let call = regex_lite::Regex::new(r"\.client\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)").unwrap();
    // A GetObject that names a version is authorized as another action: s3:GetObjectVersion.
    let versioned =
        regex_lite::Regex::new(r"\.client\s*\.\s*get_object\s*\(\s*\)[^;]*?\.version_id\(")
            .unwrap();
    let source = read(&format!("crates/core/src/adapters/{file}"));
    let mut ops: BTreeSet<String> = call
        .captures_iter(&source)
        .map(|c| format!("{service}.{}", pascal(&c[1])))
        .collect();
    if versioned.is_match(&source) {
        ops.insert(format!("{service}.GetObjectVersion"));
    }
    // So is a PutObjectTagging of a version: s3:PutObjectVersionTagging.
    let versioned_tagging = regex_lite::Regex::new(
        r"\.client\s*\.\s*put_object_tagging\s*\(\s*\)[^;]*?\.set_version_id\(",
    )
    .unwrap();
    if versioned_tagging.is_match(&source) {
        ops.insert(format!("{service}.PutObjectVersionTagging"));
    }
    // And a HeadObject that may name a version (a rebuild's recorded source): s3:GetObjectVersion.
    let versioned_head =
        regex_lite::Regex::new(r"\.client\s*\.\s*head_object\s*\(\s*\)[^;]*?\.set_version_id\(")
            .unwrap();
    if versioned_head.is_match(&source) {
        ops.insert(format!("{service}.HeadObjectVersion"));
    }
    ops
}

#[test]
fn every_sdk_call_in_the_adapters_has_an_iam_action() {
    let listed: BTreeSet<String> = OPERATION_ACTIONS
        .iter()
        .map(|(o, _)| o.to_string())
        .collect();
    let mut called = BTreeSet::new();
    for (file, service) in [
        ("s3.rs", "S3"),
        ("codebuild.rs", "CodeBuild"),
        ("sfn.rs", "SFN"),
        ("events.rs", "EventBridge"),
        ("agentcore.rs", "AgentCore"),
        ("endpoints.rs", "AgentCore"),
        ("ecr.rs", "ECR"),
        ("ecr_scan.rs", "ECR"),
        ("ecr_signature.rs", "ECR"),
        ("logs.rs", "Logs"),
    ] {
        let ops = operations_called(file, service);
        assert!(!ops.is_empty(), "found no SDK call in {file}");
        called.extend(ops);
    }
    let unlisted: Vec<_> = called.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "OPERATION_ACTIONS in catalog.rs lacks {unlisted:?}"
    );
    let stale: Vec<_> = listed.difference(&called).collect();
    assert!(
        stale.is_empty(),
        "OPERATION_ACTIONS lists {stale:?}, which no adapter calls"
    );
}

#[test]
fn operation_names_follow_the_sdk_methods() {
    assert_eq!(pascal("list_objects_v2"), "ListObjectsV2");
    assert_eq!(pascal("batch_get_builds"), "BatchGetBuilds");
}
