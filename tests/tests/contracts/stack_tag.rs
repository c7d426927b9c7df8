//! Stacks never touch each other (issue 21, item 2): what agentbuild creates carries
//! `agentbuild:stack` = the stack's name, and IAM lets a stack create, update and read only the
//! AgentCore runtimes carrying its own name.

use agentbuild_core::domain::deploy_request::TAG_STACK;
use agentbuild_tests::read;
use serde_yaml_ng::Value;

fn template() -> Value {
    serde_yaml_ng::from_str(&read("template.yaml")).expect("template.yaml parses")
}

/// `!Ref AWS::StackName`, as serde_yaml_ng reads it.
fn is_stack_name(v: &Value) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("AWS::StackName"))
}

/// Every policy statement of the template (inline `Policies` of functions and roles).
fn statements(t: &Value) -> Vec<&Value> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Mapping(m) => {
                if m.contains_key("Effect") && m.contains_key("Action") {
                    out.push(v);
                }
                m.values().for_each(|c| walk(c, out));
            }
            Value::Sequence(s) => s.iter().for_each(|c| walk(c, out)),
            Value::Tagged(t) => walk(&t.value, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&t["Resources"], &mut out);
    out
}

fn actions(s: &Value) -> Vec<String> {
    match &s["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Sequence(all) => all
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

/// The statement allows only with `<key>/agentbuild:stack` equal to the stack's name.
fn requires_own_stack(s: &Value, key: &str) -> bool {
    let want = format!("{key}/{TAG_STACK}");
    is_stack_name(&s["Condition"]["StringEquals"][want.as_str()])
}

#[test]
fn every_agentcore_change_or_read_of_a_runtime_requires_this_stacks_tag() {
    let t = template();
    let mut seen = 0;
    for s in statements(&t) {
        for a in actions(s) {
            let Some(op) = a.strip_prefix("bedrock-agentcore:") else {
                continue;
            };
            // Listing names and reading tags is how a runtime of another stack is recognised.
            if matches!(op, "ListAgentRuntimes" | "ListTagsForResource") {
                continue;
            }
            seen += 1;
            let key = if op.starts_with("Create") {
                "aws:RequestTag"
            } else {
                "aws:ResourceTag"
            };
            assert_eq!(s["Effect"], "Allow", "{a}");
            assert!(
                requires_own_stack(s, key),
                "{a} is allowed without {key}/{TAG_STACK} = the stack's name: {s:?}"
            );
        }
    }
    assert!(seen >= 3, "create, update and get of runtimes: {seen}");
}

#[test]
fn a_create_carries_exactly_the_three_agentbuild_tags() {
    let t = template();
    let create = statements(&t)
        .into_iter()
        .find(|s| {
            actions(s)
                .iter()
                .any(|a| a == "bedrock-agentcore:CreateAgentRuntime")
        })
        .expect("a CreateAgentRuntime statement");
    let keys: Vec<&str> = create["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
        .as_sequence()
        .expect("aws:TagKeys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        keys,
        [TAG_STACK, "agentbuild:project", "agentbuild:agent"],
        "the tags deploy-runtime sets (domain::deployment::Owner::tags)"
    );
}

/// Resources that take tags carry the stack's: functions and the API through Globals, the
/// others on themselves (CloudFormation's `[{Key, Value}]`, SAM's map for state machines).
#[test]
fn everything_taggable_carries_the_stack_tag() {
    let t = template();
    for global in ["Function", "HttpApi"] {
        assert!(
            is_stack_name(&t["Globals"][global]["Tags"][TAG_STACK]),
            "Globals.{global}.Tags lacks {TAG_STACK}"
        );
    }
    let listed = [
        "AWS::S3::Bucket",
        "AWS::ECR::Repository",
        "AWS::Logs::LogGroup",
        "AWS::IAM::Role",
        "AWS::SQS::Queue",
        "AWS::CodeBuild::Project",
    ];
    let mut checked = 0;
    for (id, r) in t["Resources"].as_mapping().expect("Resources") {
        let kind = r["Type"].as_str().unwrap_or_default();
        let tags = &r["Properties"]["Tags"];
        let tagged = if kind == "AWS::Serverless::StateMachine" {
            is_stack_name(&tags[TAG_STACK])
        } else if listed.contains(&kind) {
            tags.as_sequence().is_some_and(|all| {
                all.iter()
                    .any(|tag| tag["Key"] == TAG_STACK && is_stack_name(&tag["Value"]))
            })
        } else {
            continue;
        };
        checked += 1;
        assert!(tagged, "{id:?} ({kind}) lacks the {TAG_STACK} tag");
    }
    assert!(checked >= 20, "{checked}");
}
