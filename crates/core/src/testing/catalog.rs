//! One list of the functions: their state, environment and IAM actions. Tests hold it against
//! template.yaml, the adapters' SDK calls and the README's table, so the three cannot drift.

use crate::config::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Crate, binary and local function name.
    pub name: &'static str,
    /// Resource in template.yaml.
    pub logical_id: &'static str,
    /// State(s) or trigger that invokes it.
    pub invoked_by: &'static str,
    pub env: &'static [&'static str],
    /// Exactly the IAM actions its code needs.
    pub iam_actions: &'static [&'static str],
    /// The SDK operations its code calls (`OPERATION_ACTIONS` names); the handler tests check
    /// the fakes record no others.
    pub operations: &'static [&'static str],
}

pub const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: "validate-request",
        logical_id: "ValidateRequestFunction",
        invoked_by: "ValidateRequest",
        env: &[
            BUCKET,
            STACK_NAME,
            REPOSITORY_URI,
            ALLOWED_SOURCE_BUCKETS,
            RUNTIME_ROLE_ARN,
            ALLOWED_RUNTIME_ROLES,
            BUILD_SECRET_ARN_PREFIX,
        ],
        iam_actions: &[
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:PutObject",
        ],
        operations: &[
            "S3.HeadObject",
            "S3.GetObjectVersion",
            "S3.GetObject",
            "S3.PutObject",
        ],
    },
    FunctionSpec {
        name: "start-build",
        logical_id: "StartBuildFunction",
        invoked_by: "StartBuild; StartLayerBuild (a code build's missing dependency layer)",
        env: &[
            BUCKET,
            CODEBUILD_PROJECT,
            LAYER_PROJECT,
            BUILD_TIMEOUT_MINUTES,
            QUEUED_TIMEOUT_MINUTES,
            CALLBACK_TIMEOUT_SECONDS,
        ],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "codebuild:StartBuild",
            "codebuild:ListBuildsForProject",
            "codebuild:BatchGetBuilds",
            "ecr:DescribeImages",
            "codebuild:StopBuild",
        ],
        operations: &[
            "S3.GetObject",
            "S3.PutObject",
            "CodeBuild.StartBuild",
            "CodeBuild.ListBuildsForProject",
            "CodeBuild.BatchGetBuilds",
            "ECR.DescribeImages",
            "CodeBuild.StopBuild",
        ],
    },
    FunctionSpec {
        name: "prepare-code",
        logical_id: "PrepareCodeFunction",
        invoked_by: "PrepareCode (code artifacts)",
        env: &[BUCKET],
        iam_actions: &[
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:PutObject",
        ],
        operations: &[
            "S3.GetObject",
            "S3.GetObjectVersion",
            "S3.HeadObject",
            "S3.HeadObjectVersion",
            "S3.PutObject",
        ],
    },
    FunctionSpec {
        name: "assemble-artifact",
        logical_id: "AssembleArtifactFunction",
        invoked_by: "AssembleArtifact (code artifacts)",
        env: &[BUCKET],
        iam_actions: &[
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:PutObject",
        ],
        operations: &["S3.GetObject", "S3.GetObjectVersion", "S3.PutObject"],
    },
    FunctionSpec {
        name: "check-build",
        logical_id: "CheckBuildFunction",
        invoked_by: "CheckBuild (the fallback: a callback wait timed out)",
        env: &[BUCKET, CALLBACK_TIMEOUT_SECONDS],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "codebuild:BatchGetBuilds",
            "codebuild:StopBuild",
        ],
        operations: &[
            "S3.GetObject",
            "S3.PutObject",
            "CodeBuild.BatchGetBuilds",
            "CodeBuild.StopBuild",
        ],
    },
    FunctionSpec {
        name: "await-build",
        logical_id: "AwaitBuildFunction",
        invoked_by: "AwaitBuild (lambda:invoke.waitForTaskToken)",
        env: &[BUCKET, CALLBACK_TIMEOUT_SECONDS],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "codebuild:BatchGetBuilds",
            "codebuild:StopBuild",
            "states:SendTaskSuccess",
        ],
        operations: &[
            "S3.GetObject",
            "S3.PutObject",
            "CodeBuild.BatchGetBuilds",
            "CodeBuild.StopBuild",
            "SFN.SendTaskSuccess",
        ],
    },
    FunctionSpec {
        name: "build-events",
        logical_id: "BuildEventsFunction",
        invoked_by: "EventBridge rule: the project's CodeBuild Build State Change / Build Phase Change",
        env: &[
            BUCKET,
            CODEBUILD_PROJECT,
            LAYER_PROJECT,
            CALLBACK_TIMEOUT_SECONDS,
        ],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "codebuild:BatchGetBuilds",
            "codebuild:StopBuild",
            "states:SendTaskSuccess",
        ],
        operations: &[
            "S3.GetObject",
            "S3.PutObject",
            "CodeBuild.BatchGetBuilds",
            "CodeBuild.StopBuild",
            "SFN.SendTaskSuccess",
        ],
    },
    FunctionSpec {
        name: "record-result",
        logical_id: "RecordResultFunction",
        invoked_by: "RecordResult; EventBridge (execution FAILED / TIMED_OUT / ABORTED: the last-resort closer)",
        env: &[BUCKET, EVENT_BUS],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "s3:PutObjectLegalHold",
            "codebuild:StopBuild",
            "events:PutEvents",
            "ecr:BatchGetImage",
            "ecr:PutImage",
            "ecr:BatchDeleteImage",
            "ecr:DescribeImageSigningStatus",
        ],
        operations: &[
            "S3.GetObject",
            "S3.PutObject",
            "S3.PutObjectLegalHold",
            "CodeBuild.StopBuild",
            "EventBridge.PutEvents",
            "ECR.BatchGetImage",
            "ECR.PutImage",
            "ECR.BatchDeleteImage",
            "ECR.DescribeImageSigningStatus",
            "ECR.ListImageReferrers",
        ],
    },
    FunctionSpec {
        name: "deploy-runtime",
        logical_id: "DeployRuntimeFunction",
        invoked_by: "DeployRuntime",
        env: &[
            BUCKET,
            STACK_NAME,
            RUNTIME_ROLE_ARN,
            DEPLOY_POLL_SECONDS,
            DEPLOY_TIMEOUT_SECONDS,
            SCAN_GATE_SEVERITY,
            SCAN_GATE_FIXABLE_ONLY,
            SCAN_GATE_REQUIRE_SCAN,
        ],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "ecr:DescribeImageScanFindings",
            "inspector2:ListFindings",
            "bedrock-agentcore:CreateAgentRuntime",
            "bedrock-agentcore:UpdateAgentRuntime",
            "bedrock-agentcore:ListAgentRuntimes",
            "bedrock-agentcore:ListTagsForResource",
            "iam:PassRole",
        ],
        operations: &[
            "S3.GetObject",
            "S3.PutObject",
            "ECR.DescribeImageScanFindings",
            "AgentCore.CreateAgentRuntime",
            "AgentCore.UpdateAgentRuntime",
            "AgentCore.ListAgentRuntimes",
            "AgentCore.ListTagsForResource",
        ],
    },
    FunctionSpec {
        name: "check-runtime",
        logical_id: "CheckRuntimeFunction",
        invoked_by: "CheckRuntime",
        env: &[BUCKET, STACK_NAME, DEPLOY_POLL_SECONDS, DEPLOY_TIMEOUT_SECONDS],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "bedrock-agentcore:GetAgentRuntime",
            "bedrock-agentcore:GetAgentRuntimeEndpoint",
            "bedrock-agentcore:CreateAgentRuntimeEndpoint",
            "bedrock-agentcore:UpdateAgentRuntimeEndpoint",
            "bedrock-agentcore:InvokeAgentRuntime",
        ],
        operations: &[
            "S3.GetObject",
            "AgentCore.GetAgentRuntime",
            "AgentCore.GetAgentRuntimeEndpoint",
            "AgentCore.CreateAgentRuntimeEndpoint",
            "AgentCore.UpdateAgentRuntimeEndpoint",
            "AgentCore.InvokeAgentRuntime",
        ],
    },
    FunctionSpec {
        name: "api",
        logical_id: "ApiFunction",
        invoked_by: "HTTP API: POST /projects/{project}/builds, GET and DELETE /projects/{project}/builds/{buildId}, GET /projects/{project}/builds/{buildId}/logs, GET /projects/{project}/agents/{agent}, GET /projects/{project}/agents/{agent}/runtimes, DELETE /projects/{project}/agents/{agent}/runtimes/{runtimeName}, GET /projects/{project}/agents/{agent}/deployments, POST /projects/{project}/agents/{agent}/rollback, POST /projects/{project}/builds/{buildId}/promote",
        env: &[
            BUCKET,
            STACK_NAME,
            STATE_MACHINE_ARN,
            REPOSITORY_URI,
            ALLOWED_SOURCE_BUCKETS,
            RUNTIME_ROLE_ARN,
            ALLOWED_RUNTIME_ROLES,
            BUILD_SECRET_ARN_PREFIX,
        ],
        iam_actions: &[
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "s3:GetObjectVersion",
            "states:StartExecution",
            "states:DescribeExecution",
            "states:StopExecution",
            "codebuild:BatchGetBuilds",
            "codebuild:StopBuild",
            "logs:GetLogEvents",
            "bedrock-agentcore:ListAgentRuntimes",
            "bedrock-agentcore:ListTagsForResource",
            "bedrock-agentcore:DeleteAgentRuntime",
            "bedrock-agentcore:GetAgentRuntimeEndpoint",
            "bedrock-agentcore:UpdateAgentRuntimeEndpoint",
            "ecr:DescribeImages",
        ],
        operations: &[
            "S3.HeadObject",
            "S3.GetObjectVersion",
            "S3.GetObject",
            "S3.PutObject",
            "SFN.StartExecution",
            "SFN.DescribeExecution",
            "SFN.StopExecution",
            "CodeBuild.BatchGetBuilds",
            "CodeBuild.StopBuild",
            "Logs.GetLogEvents",
            "S3.ListObjectsV2",
            "AgentCore.ListAgentRuntimes",
            "AgentCore.ListTagsForResource",
            "AgentCore.DeleteAgentRuntime",
            "AgentCore.GetAgentRuntimeEndpoint",
            "AgentCore.UpdateAgentRuntimeEndpoint",
            "ECR.DescribeImages",
        ],
    },
    FunctionSpec {
        name: "rebuild",
        logical_id: "RebuildFunction",
        invoked_by: "the fleet-rebuild machine (rebuild.asl.json): TakeLock, ListAgents, ExistingRebuild, Summarize, ReleaseLock",
        env: &[
            BUCKET,
            STATE_MACHINE_ARN,
            REBUILD_MAX_CONCURRENCY,
            REBUILD_TOLERATED_FAILURE_PERCENTAGE,
        ],
        iam_actions: &[
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:PutObject",
            "states:DescribeExecution",
        ],
        operations: &[
            "S3.ListObjectsV2",
            "S3.HeadObject",
            "S3.HeadObjectVersion",
            "S3.GetObject",
            "S3.PutObject",
            "SFN.DescribeExecution",
        ],
    },
];

/// The IAM action each SDK operation the adapters call needs (HeadObject is authorized as
/// s3:GetObject). A test reads the adapters' source and checks every operation they call is in
/// this list.
pub const OPERATION_ACTIONS: &[(&str, &str)] = &[
    ("S3.HeadObject", "s3:GetObject"),
    ("S3.GetObject", "s3:GetObject"),
    // GetObject of a given version (the validated source) is authorized as s3:GetObjectVersion.
    ("S3.GetObjectVersion", "s3:GetObjectVersion"),
    // So is HeadObject of a given version (a rebuild's recorded source version).
    ("S3.HeadObjectVersion", "s3:GetObjectVersion"),
    ("S3.PutObject", "s3:PutObject"),
    // The legal hold that keeps the source version a latest.json names (of any version).
    ("S3.PutObjectLegalHold", "s3:PutObjectLegalHold"),
    ("CodeBuild.StartBuild", "codebuild:StartBuild"),
    ("CodeBuild.BatchGetBuilds", "codebuild:BatchGetBuilds"),
    ("CodeBuild.StopBuild", "codebuild:StopBuild"),
    ("Logs.GetLogEvents", "logs:GetLogEvents"),
    (
        "CodeBuild.ListBuildsForProject",
        "codebuild:ListBuildsForProject",
    ),
    ("S3.ListObjectsV2", "s3:ListBucket"),
    ("ECR.DescribeImages", "ecr:DescribeImages"),
    ("ECR.BatchGetImage", "ecr:BatchGetImage"),
    ("ECR.PutImage", "ecr:PutImage"),
    ("ECR.BatchDeleteImage", "ecr:BatchDeleteImage"),
    (
        "ECR.DescribeImageSigningStatus",
        "ecr:DescribeImageSigningStatus",
    ),
    // "The IAM principal invoking this operation must have the ecr:BatchGetImage permission"
    // (the ListImageReferrers API reference).
    ("ECR.ListImageReferrers", "ecr:BatchGetImage"),
    (
        "ECR.DescribeImageScanFindings",
        "ecr:DescribeImageScanFindings",
    ),
    ("SFN.StartExecution", "states:StartExecution"),
    ("SFN.DescribeExecution", "states:DescribeExecution"),
    ("SFN.ListExecutions", "states:ListExecutions"),
    ("SFN.StopExecution", "states:StopExecution"),
    ("SFN.SendTaskSuccess", "states:SendTaskSuccess"),
    ("EventBridge.PutEvents", "events:PutEvents"),
    (
        "AgentCore.CreateAgentRuntime",
        "bedrock-agentcore:CreateAgentRuntime",
    ),
    (
        "AgentCore.UpdateAgentRuntime",
        "bedrock-agentcore:UpdateAgentRuntime",
    ),
    (
        "AgentCore.GetAgentRuntime",
        "bedrock-agentcore:GetAgentRuntime",
    ),
    (
        "AgentCore.ListAgentRuntimes",
        "bedrock-agentcore:ListAgentRuntimes",
    ),
    (
        "AgentCore.ListTagsForResource",
        "bedrock-agentcore:ListTagsForResource",
    ),
    (
        "AgentCore.GetAgentRuntimeEndpoint",
        "bedrock-agentcore:GetAgentRuntimeEndpoint",
    ),
    (
        "AgentCore.CreateAgentRuntimeEndpoint",
        "bedrock-agentcore:CreateAgentRuntimeEndpoint",
    ),
    (
        "AgentCore.UpdateAgentRuntimeEndpoint",
        "bedrock-agentcore:UpdateAgentRuntimeEndpoint",
    ),
    (
        "AgentCore.InvokeAgentRuntime",
        "bedrock-agentcore:InvokeAgentRuntime",
    ),
    (
        "AgentCore.DeleteAgentRuntime",
        "bedrock-agentcore:DeleteAgentRuntime",
    ),
];

/// Actions an operation needs beside its own (the service authorization reference's "dependent
/// actions"): creating or updating a runtime passes its execution role to AgentCore; reading
/// enhanced scanning's findings reads Inspector's.
pub const DEPENDENT_ACTIONS: &[(&str, &str)] = &[
    // With enhanced scanning ECR answers with Amazon Inspector's findings, which the caller
    // must be allowed to read (Amazon ECR User Guide, "IAM permissions required for enhanced
    // scanning in Amazon ECR").
    ("ECR.DescribeImageScanFindings", "inspector2:ListFindings"),
    ("AgentCore.CreateAgentRuntime", "iam:PassRole"),
    ("AgentCore.UpdateAgentRuntime", "iam:PassRole"),
];

pub fn function(name: &str) -> Option<&'static FunctionSpec> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The IAM action `operation` needs, if it is one the adapters call.
pub fn action_of(operation: &str) -> Option<&'static str> {
    OPERATION_ACTIONS
        .iter()
        .find(|(o, _)| *o == operation)
        .map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn each_policy_allows_exactly_the_operations_its_function_calls() {
        for f in FUNCTIONS {
            let mut needed: BTreeSet<&str> = f
                .operations
                .iter()
                .map(|op| action_of(op).unwrap_or_else(|| panic!("{}: unknown {op}", f.name)))
                .collect();
            needed.extend(
                DEPENDENT_ACTIONS
                    .iter()
                    .filter(|(op, _)| f.operations.contains(op))
                    .map(|(_, a)| *a),
            );
            let granted: BTreeSet<&str> = f.iam_actions.iter().copied().collect();
            let missing: Vec<_> = needed.difference(&granted).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", f.name);
            // s3:ListBucket is granted beyond what the operations need: without it S3 answers
            // a missing key with 403 instead of 404, and the handlers could not tell "absent"
            // from "denied".
            let extra: Vec<_> = granted
                .difference(&needed)
                .filter(|a| **a != "s3:ListBucket")
                .collect();
            assert!(extra.is_empty(), "{} is granted unused {extra:?}", f.name);
        }
    }
}
