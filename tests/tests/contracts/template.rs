//! template.yaml against the code: environment, IAM actions, substitutions, binaries.

use agentbuild_core::testing::catalog::FUNCTIONS;
use agentbuild_tests::{placeholders, read, DEFINITION};
use serde_yaml_ng::Value;
use std::collections::BTreeSet;

fn template() -> Value {
    serde_yaml_ng::from_str(&read("template.yaml")).expect("template.yaml parses")
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    let r = &t["Resources"][id];
    assert!(!r.is_null(), "template.yaml has no resource {id}");
    r
}

/// Every value of `key` anywhere below `v`, looking through CloudFormation tags (`!If`, ...).
fn collect<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Mapping(m) => {
            for (k, c) in m {
                if k.as_str() == Some(key) {
                    out.push(c);
                }
                collect(c, key, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| collect(c, key, out)),
        Value::Tagged(t) => collect(&t.value, key, out),
        _ => {}
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(s) => s.iter().flat_map(strings).collect(),
        _ => vec![],
    }
}

#[test]
fn every_function_is_built_from_its_crate() {
    let t = template();
    for f in FUNCTIONS {
        let r = resource(&t, f.logical_id);
        assert_eq!(
            r["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{}",
            f.name
        );
        assert_eq!(
            r["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(f.name)
        );
    }
}

/// Each function's binary runs exactly its handler module's `main` (the process the local stack
/// runs as `agentbuild-handlers <name>`, which `make test` builds instead of the twelve): its
/// main.rs is that one call, and `handlers::MAINS` names every cataloged function once.
#[test]
fn every_function_binary_is_its_handler_modules_main() {
    let mut table: Vec<String> = agentbuild_core::handlers::MAINS
        .iter()
        .map(|(m, _)| m.to_string())
        .collect();
    let mut cataloged: Vec<String> = FUNCTIONS.iter().map(|f| f.name.replace('-', "_")).collect();
    table.sort_unstable();
    cataloged.sort_unstable();
    assert_eq!(table, cataloged, "handlers::MAINS against the catalog");
    for f in FUNCTIONS {
        let module = f.name.replace('-', "_");
        let runtime = if f.name == "api" {
            "lambda_http"
        } else {
            "lambda_runtime"
        };
        // The crate depends on the runtime crate its main.rs names (make package compiles it).
        let manifest = read(&format!("functions/{}/Cargo.toml", f.name));
        assert!(
            manifest.contains(&format!("\n{runtime}.workspace = true\n")),
            "functions/{}/Cargo.toml does not depend on {runtime}",
            f.name
        );
        let main = read(&format!("functions/{}/src/main.rs", f.name));
        let code: String = main
            .lines()
            .filter(|l| !l.starts_with("//!"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            code.trim_start(),
            format!(
                "fn main() -> Result<(), {runtime}::Error> {{\n    \
                 agentbuild_core::handlers::{module}::main()\n}}\n"
            ),
            "functions/{}/src/main.rs",
            f.name
        );
    }
}

/// functions/ holds Lambda crates only, and they are exactly the catalog's functions: the one
/// list `make package`, the local stack and these tests all read (the directory).
#[test]
fn functions_holds_exactly_the_catalogs_lambdas() {
    let mut dirs: Vec<String> = std::fs::read_dir(agentbuild_tests::root().join("functions"))
        .expect("functions/")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    dirs.sort();
    let mut names: Vec<String> = FUNCTIONS.iter().map(|f| f.name.to_string()).collect();
    names.sort();
    assert_eq!(dirs, names);
    for f in FUNCTIONS {
        let manifest = read(&format!("functions/{}/Cargo.toml", f.name));
        assert!(
            (manifest.contains("lambda_runtime") || manifest.contains("lambda_http"))
                && manifest.contains(r#"features = ["lambda"]"#),
            "functions/{} is not a Lambda crate",
            f.name
        );
    }
}

#[test]
fn every_function_gets_exactly_the_environment_its_config_reads() {
    let t = template();
    for f in FUNCTIONS {
        let vars = &resource(&t, f.logical_id)["Properties"]["Environment"]["Variables"];
        let set: BTreeSet<&str> = vars
            .as_mapping()
            .unwrap_or_else(|| panic!("{} has no environment", f.name))
            .keys()
            .filter_map(Value::as_str)
            .collect();
        let want: BTreeSet<&str> = f.env.iter().copied().collect();
        assert_eq!(set, want, "{}", f.name);
    }
}

#[test]
fn every_function_is_allowed_exactly_the_actions_its_code_calls() {
    let t = template();
    for f in FUNCTIONS {
        let mut found = Vec::new();
        collect(
            &resource(&t, f.logical_id)["Properties"]["Policies"],
            "Action",
            &mut found,
        );
        let actions: BTreeSet<String> = found.into_iter().flat_map(strings).collect();
        let want: BTreeSet<String> = f.iam_actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(actions, want, "{}", f.name);
    }
}

#[test]
fn no_policy_grants_wildcard_actions_or_resources_beyond_the_known_few() {
    // Actions AWS only authorizes on "*".
    const STAR_ONLY: &[&str] = &[
        "ecr:GetAuthorizationToken",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        // Only on "*" (it names no resource; the runtime role conditions it on its namespace).
        "cloudwatch:PutMetricData",
        // The service authorization reference lists no resource type for these two; the create
        // is conditioned on agentbuild's tags.
        "bedrock-agentcore:CreateAgentRuntime",
        "bedrock-agentcore:ListAgentRuntimes",
        // Inspector's ListFindings names no resource type (enhanced scanning's findings).
        "inspector2:ListFindings",
    ];
    let t = template();
    let mut statements = Vec::new();
    collect(&t["Resources"], "Statement", &mut statements);
    for list in statements {
        for s in list.as_sequence().into_iter().flatten() {
            let s = match s {
                Value::Tagged(tag) => &tag.value[1],
                s => s,
            };
            if s["Effect"] != "Allow" {
                continue; // a Deny may be as broad as it likes
            }
            let actions = strings(&s["Action"]);
            for a in &actions {
                assert!(!a.ends_with(":*") && a != "*", "wildcard action {a}");
            }
            if strings(&s["Resource"]).iter().any(|r| r == "*") {
                for a in &actions {
                    assert!(STAR_ONLY.contains(&a.as_str()), "{a} on Resource \"*\"");
                }
            }
        }
    }
}

#[test]
fn every_placeholder_in_the_definition_is_substituted_and_nothing_else() {
    let t = template();
    let sm = resource(&t, "BuildStateMachine");
    assert_eq!(sm["Properties"]["DefinitionUri"].as_str(), Some(DEFINITION));
    let subs: Vec<&str> = sm["Properties"]["DefinitionSubstitutions"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(Value::as_str)
        .collect();
    let mut want = placeholders(&read(DEFINITION));
    want.sort();
    let mut subs = subs.into_iter().map(String::from).collect::<Vec<_>>();
    subs.sort();
    assert_eq!(subs, want);
}

#[test]
fn the_project_runs_the_repository_buildspec_verbatim() {
    let t = template();
    let spec = resource(&t, "BuildProject")["Properties"]["Source"]["BuildSpec"]
        .as_str()
        .expect("inline buildspec");
    assert_eq!(spec, read("buildspec.yml"), "run scripts/sync_buildspec.py");
}

#[test]
fn the_buildspec_reads_every_variable_start_build_sets_and_exports_the_image() {
    let spec = read("buildspec.yml");
    let parsed: Value = serde_yaml_ng::from_str(&spec).unwrap();
    let exported = strings(&parsed["env"]["exported-variables"]);
    assert!(
        exported.contains(&"IMAGE_DIGEST".to_string()),
        "{exported:?}"
    );
    assert!(exported.contains(&"IMAGE_URI".to_string()), "{exported:?}");
    let plan: agentbuild_core::model::PlanState =
        serde_json::from_str(&read("events/start-build/plan.json")).unwrap();
    let config = start_config();
    let req = agentbuild_core::handlers::start_build::start_request(&config, &plan.plan);
    for name in req.environment.keys() {
        assert!(
            spec.contains(name.as_str()),
            "{name} unused by buildspec.yml"
        );
    }
}

/// start-build's settings, as the template would give them (any values: the tests read names).
fn start_config() -> agentbuild_core::config::StartBuildConfig {
    agentbuild_core::config::StartBuildConfig {
        bucket: "b".into(),
        project: "p".into(),
        layer_project: "c".into(),
        build_timeout_minutes: 60,
        queued_timeout_minutes: 30,
        fallback: agentbuild_core::domain::fallback::Fallback::default(),
    }
}

#[test]
fn the_layer_buildspec_reads_every_variable_a_layer_build_gets() {
    let spec = read("buildspec-code.yml");
    let input: agentbuild_core::model::StartInput =
        serde_json::from_str(&read("events/start-build/code-layer.json")).unwrap();
    let config = start_config();
    let layer = input.dependencies.expect("a layer to build");
    let req = agentbuild_core::handlers::start_build::layer_request(&config, &input.plan, &layer);
    assert_eq!(
        req.source_location, None,
        "no source: the context never reaches the host"
    );
    for name in req.environment.keys() {
        // The build id names the build for a retried StartBuild (ListBuildsForProject).
        if name != "AGENTBUILD_BUILD_ID" {
            assert!(
                spec.contains(name.as_str()),
                "{name} unused by buildspec-code.yml"
            );
        }
    }
}

/// The callback timeout's bounds are the ones the history bound is computed for, and only the
/// two functions that complete waits may read parked tokens.
#[test]
fn the_callback_timeout_parameter_matches_the_history_bound_and_tokens_stay_private() {
    use agentbuild_core::domain::fallback::{
        DEFAULT_CALLBACK_TIMEOUT_SECONDS, MIN_CALLBACK_TIMEOUT_SECONDS,
    };
    let t = template();
    let p = &t["Parameters"]["CallbackTimeoutSeconds"];
    assert_eq!(
        p["Default"].as_u64(),
        Some(DEFAULT_CALLBACK_TIMEOUT_SECONDS)
    );
    assert_eq!(p["MinValue"].as_u64(), Some(MIN_CALLBACK_TIMEOUT_SECONDS));
    for f in FUNCTIONS {
        let mut found = Vec::new();
        collect(
            &resource(&t, f.logical_id)["Properties"]["Policies"],
            "Resource",
            &mut found,
        );
        let text = format!("{found:?}");
        let reads_callbacks = text.contains("callbacks/");
        assert_eq!(
            reads_callbacks,
            ["await-build", "build-events"].contains(&f.name),
            "{}: callbacks/ access",
            f.name
        );
        assert!(
            !text.contains("${Bucket.Arn}/*\""),
            "{}: the whole bucket",
            f.name
        );
    }
    // The rule hands the function only this project's CodeBuild events.
    let rule = resource(&t, "CodeBuildEventsRule");
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(strings(&pattern["source"]), ["aws.codebuild"]);
    assert_eq!(
        strings(&pattern["detail-type"]),
        [
            agentbuild_core::handlers::build_events::STATE_CHANGE,
            agentbuild_core::handlers::build_events::PHASE_CHANGE
        ]
    );
    assert!(!pattern["detail"]["project-name"].is_null());
}

/// Whether the bucket's lifecycle rule `id` (as template.yaml writes it: `Prefix`,
/// `TagFilters`, `ExpirationInDays` — a parameter's default) expires an object. S3 matches a
/// rule when the key starts with its prefix and the object has every one of its tags.
fn expires(t: &Value, id: &str, key: &str, tags: &[(&str, &str)], age_days: u64) -> bool {
    let rules = t["Resources"]["Bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .unwrap();
    let rule = rules.iter().find(|r| r["Id"] == id).expect("the rule");
    let days = match &rule["ExpirationInDays"] {
        Value::Tagged(tag) => t["Parameters"][tag.value.as_str().unwrap()]["Default"]
            .as_u64()
            .unwrap(),
        v => v.as_u64().unwrap(),
    };
    applies(rule, key, tags) && age_days >= days
}

/// Whether a lifecycle rule is enabled and matches `key` and the version's `tags` (S3 matches
/// the rule's prefix and all its tag filters).
fn applies(rule: &Value, key: &str, tags: &[(&str, &str)]) -> bool {
    let prefix = rule["Prefix"].as_str().unwrap_or("");
    let all_tags = rule["TagFilters"]
        .as_sequence()
        .into_iter()
        .flatten()
        .all(|f| {
            tags.iter()
                .any(|(k, v)| f["Key"].as_str() == Some(k) && f["Value"].as_str() == Some(v))
        });
    rule["Status"] == "Enabled" && key.starts_with(prefix) && all_tags
}

/// Whether any rule of the bucket expires a *noncurrent* version of `key` with `tags` that has
/// been noncurrent for `days` (S3 matches a rule's prefix and all its tags against the
/// version: tags are per version).
fn expires_noncurrent(t: &Value, key: &str, tags: &[(&str, &str)], days: u64) -> bool {
    let rules = t["Resources"]["Bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .unwrap();
    rules.iter().any(|rule| {
        let Some(after) = rule["NoncurrentVersionExpiration"]["NoncurrentDays"].as_u64() else {
            return false;
        };
        applies(rule, key, tags) && days >= after
    })
}

/// Whether the bucket can hold versions (Object Lock): record-result's legal hold on the source
/// a latest.json names is what keeps it, since S3 deletes no held version, lifecycle included.
fn held(t: &Value) -> bool {
    t["Resources"]["Bucket"]["Properties"]["ObjectLockEnabled"] == Value::Bool(true)
}

#[test]
fn a_source_version_a_latest_json_names_never_expires_even_when_noncurrent() {
    let t = template();
    let key = "sources/nexus-ai/sales/0f34.zip";
    // Versions nobody names go, tagged or not: nothing is asked of uploaders.
    for tags in [&[][..], &[("agentbuild:latest", "true")][..]] {
        assert!(expires_noncurrent(&t, key, tags, 30));
        assert!(!expires_noncurrent(&t, key, tags, 29));
    }
    // The version latest.json names is held: the bucket has Object Lock (legal holds only, no
    // default retention that would keep every upload) and record-result may hold it.
    assert!(held(&t));
    assert!(t["Resources"]["Bucket"]["Properties"]["ObjectLockConfiguration"].is_null());
    let mut actions = Vec::new();
    collect(
        &t["Resources"]["RecordResultFunction"]["Properties"]["Policies"],
        "Action",
        &mut actions,
    );
    assert!(actions
        .iter()
        .flat_map(|a| strings(a))
        .any(|a| a == "s3:PutObjectLegalHold"));
    // Every other prefix of the layout still sheds its old versions.
    for key in [
        "builds/b.json",
        "agents/p/a/latest.json",
        "rebuilds/r.json",
        "callbacks/b.json",
    ] {
        assert!(expires_noncurrent(&t, key, &[], 30), "{key}");
    }
}

#[test]
fn uploads_a_latest_json_names_never_expire_and_others_do() {
    let t = template();
    let key = "sources/nexus-ai/sales/0f34.zip";
    // Any upload, whatever its tags (none asked): its current version expires after the
    // default; a held one keeps its version (S3 only puts a delete marker over it).
    for tags in [&[][..], &[("agentbuild:latest", "false")][..]] {
        assert!(expires(&t, "ExpireSources", key, tags, 30));
        assert!(!expires(&t, "ExpireSources", key, tags, 29));
    }
    assert!(held(&t));
    assert!(!expires(&t, "ExpireSources", "builds/b.json", &[], 10_000));
    // No statement asks an upload for a tag (multipart parts cannot carry one).
    let policy = format!("{:?}", t["Resources"]["BucketPolicy"]);
    assert!(!policy.contains("RequestObjectTag"), "{policy}");
}

/// The image repository's lifecycle rules, `${ImagesToKeep}` at its default.
fn image_lifecycle_rules(t: &Value) -> Vec<serde_json::Value> {
    let text = &resource(t, "Repository")["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"];
    let Value::Tagged(sub) = text else {
        panic!("LifecyclePolicyText is a !Sub")
    };
    let keep = t["Parameters"]["ImagesToKeep"]["Default"].as_u64().unwrap();
    let body = sub
        .value
        .as_str()
        .unwrap()
        .replace("${ImagesToKeep}", &keep.to_string());
    let policy: serde_json::Value = serde_json::from_str(&body).expect("the policy is JSON");
    let mut rules = policy["rules"].as_array().unwrap().clone();
    rules.sort_by_key(|r| r["rulePriority"].as_u64().unwrap());
    rules
}

#[test]
fn images_with_a_kept_tag_are_protected_by_the_top_priority_lifecycle_rule() {
    // ECR: an image that matches a higher-priority rule's tag selection is never expired by a
    // lower-priority rule. So the rule for kept tags comes first and never fires itself.
    let rules = image_lifecycle_rules(&template());
    let top = &rules[0];
    let prefix = agentbuild_core::domain::images::KEPT_PREFIX;
    assert_eq!(top["selection"]["tagStatus"], "tagged", "{top}");
    assert_eq!(
        top["selection"]["tagPrefixList"],
        serde_json::json!([prefix])
    );
    assert_eq!(top["selection"]["countType"], "sinceImagePushed");
    assert!(
        top["selection"]["countNumber"].as_u64().unwrap() >= 36500,
        "never within a century: {top}"
    );
    // No other rule selects kept tags before it, and the catch-all comes last (ECR's rule).
    let priorities: BTreeSet<u64> = rules
        .iter()
        .map(|r| r["rulePriority"].as_u64().unwrap())
        .collect();
    assert_eq!(priorities.len(), rules.len(), "unique priorities");
    let last = rules.last().unwrap();
    assert_eq!(last["selection"]["tagStatus"], "any");
    // A kept tag can never be a build's own tag: those start with a project name.
    assert!(!prefix.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()));
}
