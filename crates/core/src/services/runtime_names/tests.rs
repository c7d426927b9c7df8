use super::*;
use crate::domain::deploy_request::default_runtime_name;
use crate::domain::record::tests::{plan, running, t};
use crate::domain::record::BuildRecord;
use crate::domain::runtime_names::{RuntimeState, FIELD};
use crate::ports::{ObjectMeta, Precondition};
use crate::testing::fake_runtimes::{FakeRuntimes, STACK};
use crate::testing::fakes::FakeStore;
use serde_json::json;
use std::cell::Cell;

fn owner(agent: &str) -> Owner<'_> {
    Owner {
        stack: STACK,
        project: "nexus-ai",
        agent,
    }
}

fn now() -> DateTime<Utc> {
    t("2026-12-07T06:00:00Z")
}

fn field_of(e: Error) -> String {
    match e {
        Error::InvalidRequest(r) => r.field,
        other => panic!("not a rejection: {other:?}"),
    }
}

/// The agent's latest record deployed to runtime name `name`.
fn latest_deployed_to(store: &FakeStore, agent: &str, name: &str) {
    let mut p = plan();
    p.agent = agent.into();
    let mut rec = BuildRecord::new(&p, Some(&running()), None, now());
    rec.deployment = Some(
        serde_json::from_value(json!({
            "status": "READY", "runtimeId": "rt", "runtimeArn": "arn", "runtimeName": name,
            "runtimeVersion": "1", "containerUri": "r@sha256:00",
            "startedAt": "2026-12-07T05:00:00Z", "finishedAt": "2026-12-07T05:01:00Z"
        }))
        .unwrap(),
    );
    store.seed(
        &format!("agents/nexus-ai/{agent}/latest.json"),
        rec.to_json(),
    );
}

#[tokio::test]
async fn a_name_is_bound_on_first_use_and_refused_to_every_other_agent() {
    let store = FakeStore::default();
    claim(&store, "Sales_Bot", &owner("sales"), now())
        .await
        .unwrap();
    claim(&store, "Sales_Bot", &owner("sales"), now())
        .await
        .unwrap();
    let err = claim(&store, "Sales_Bot", &owner("billing"), now())
        .await
        .unwrap_err();
    assert_eq!(field_of(err), FIELD);
    // Another agent's default name, even before that agent ever deployed.
    let theirs = default_runtime_name(STACK, "nexus-ai", "support");
    let err = claim(&store, &theirs, &owner("sales"), now())
        .await
        .unwrap_err();
    assert_eq!(field_of(err), FIELD);
    let listed = list(&store, &owner("sales")).await.unwrap();
    assert_eq!(listed.runtimes.len(), 1);
    assert_eq!(listed.runtimes[0].status, RuntimeState::Reserved);
    assert!(list(&store, &owner("billing"))
        .await
        .unwrap()
        .runtimes
        .is_empty());
}

/// A store where another agent's claim lands between this claim's read and its write.
struct Racing {
    inner: FakeStore,
    raced: Cell<bool>,
}

impl ObjectStore for Racing {
    async fn head(&self, b: &str, k: &str) -> Result<Option<ObjectMeta>, Error> {
        self.inner.head(b, k).await
    }
    async fn head_version(&self, b: &str, k: &str, v: &str) -> Result<Option<ObjectMeta>, Error> {
        self.inner.head_version(b, k, v).await
    }
    async fn sha256(&self, b: &str, k: &str, v: &str) -> Result<String, Error> {
        self.inner.sha256(b, k, v).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get(key).await
    }
    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), Error> {
        self.inner.put_json(key, body).await
    }
    async fn get_tagged(&self, key: &str) -> Result<Option<Tagged>, Error> {
        self.inner.get_tagged(key).await
    }
    async fn put_json_if(
        &self,
        key: &str,
        body: Vec<u8>,
        c: Precondition<'_>,
    ) -> Result<bool, Error> {
        if !self.raced.replace(true) {
            let theirs = decide_claim(None, "Shared", &owner("billing"), now())
                .unwrap()
                .unwrap();
            self.inner.seed(key, serde_json::to_vec(&theirs).unwrap());
        }
        self.inner.put_json_if(key, body, c).await
    }
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.inner.list_keys(prefix).await
    }
    fn own_bucket(&self) -> &str {
        self.inner.own_bucket()
    }
    async fn hold_latest(&self, k: &str, v: Option<&str>, l: bool) -> Result<bool, Error> {
        self.inner.hold_latest(k, v, l).await
    }
}

#[tokio::test]
async fn of_two_agents_claiming_one_free_name_at_once_exactly_one_wins() {
    let store = Racing {
        inner: FakeStore::default(),
        raced: Cell::new(false),
    };
    // sales read "free", billing's claim landed first: the conditional write loses, the read
    // again sees billing's binding, and sales is refused.
    let err = claim(&store, "Shared", &owner("sales"), now())
        .await
        .unwrap_err();
    assert_eq!(field_of(err), FIELD);
    let stored: Binding = read_json(&store.inner, &binding_key("Shared"), WHAT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.agent, "billing");
    claim(&store, "Shared", &owner("billing"), now())
        .await
        .unwrap();
}

/// sales deployed to `Old` (runtime `rt-old`) and then to `New` (its latest record).
async fn moved(store: &FakeStore, runtimes: &FakeRuntimes) {
    let me = owner("sales");
    for (name, id, build) in [("Old", "rt-old", "b-1"), ("New", "rt-new", "b-2")] {
        claim(store, name, &me, now()).await.unwrap();
        runtimes.add(id, name, "nexus-ai", "sales");
        let arn = format!("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/{id}");
        note_deployed(store, name, &me, (id, &arn), build, now())
            .await
            .unwrap();
    }
    latest_deployed_to(store, "sales", "New");
}

#[tokio::test]
async fn a_changed_name_lists_the_old_runtime_superseded_and_retire_deletes_it_once() {
    let (store, runtimes) = (FakeStore::default(), FakeRuntimes::default());
    moved(&store, &runtimes).await;
    let me = owner("sales");
    let listed = list(&store, &me).await.unwrap().runtimes;
    let states: Vec<_> = listed
        .iter()
        .map(|r| (r.binding.runtime_name.as_str(), r.status))
        .collect();
    assert_eq!(
        states,
        [
            ("New", RuntimeState::Active),
            ("Old", RuntimeState::Superseded)
        ]
    );
    assert_eq!(listed[1].binding.last_build_id.as_deref(), Some("b-1"));

    let first = retire(
        &store,
        &runtimes,
        &me,
        "Old",
        false,
        "arn:aws:iam::1:user/ops",
        now(),
    )
    .await
    .unwrap();
    let Retirement::Retired(entry) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(entry.status, RuntimeState::Retired);
    let gone = entry.binding.retired.as_ref().unwrap();
    assert_eq!(
        (gone.by.as_str(), gone.runtime_arn.as_deref()),
        (
            "arn:aws:iam::1:user/ops",
            Some("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/rt-old")
        )
    );
    assert_eq!(*runtimes.deleted.borrow(), ["rt-old"]);
    let again = retire(
        &store,
        &runtimes,
        &me,
        "Old",
        false,
        "someone else",
        t("2026-12-07T07:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(again, first, "retiring twice answers the same");
    assert_eq!(runtimes.deleted.borrow().len(), 1);
    // The tombstone keeps the name the agent's.
    let err = claim(&store, "Old", &owner("billing"), now())
        .await
        .unwrap_err();
    assert_eq!(field_of(err), FIELD);
}

#[tokio::test]
async fn the_current_runtime_is_retired_only_when_forced_and_never_another_agents() {
    let (store, runtimes) = (FakeStore::default(), FakeRuntimes::default());
    moved(&store, &runtimes).await;
    let me = owner("sales");
    let refused = retire(&store, &runtimes, &me, "New", false, "ops", now())
        .await
        .unwrap();
    assert_eq!(refused, Retirement::Refused(RetireRefusal::Current));
    let forced = retire(&store, &runtimes, &me, "New", true, "ops", now())
        .await
        .unwrap();
    let Retirement::Retired(entry) = forced else {
        panic!()
    };
    assert!(entry.binding.retired.unwrap().was_current);
    // Not this agent's name: nothing is said of it.
    let other = retire(
        &store,
        &runtimes,
        &owner("billing"),
        "Old",
        true,
        "ops",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(other, Retirement::Refused(RetireRefusal::NotFound));
    // A runtime of the name tagged for someone else (made by hand): never deleted.
    claim(&store, "Hand", &me, now()).await.unwrap();
    runtimes.add_of("agentbuild-staging", "rt-hand", "Hand", "nexus-ai", "sales");
    let not_ours = retire(&store, &runtimes, &me, "Hand", false, "ops", now())
        .await
        .unwrap();
    assert!(matches!(not_ours, Retirement::NotOurs(_)));
    assert!(runtimes.runtimes.borrow().contains_key("rt-hand"));
}

#[tokio::test]
async fn a_retire_whose_runtime_is_gone_already_is_still_recorded() {
    let (store, runtimes) = (FakeStore::default(), FakeRuntimes::default());
    moved(&store, &runtimes).await;
    runtimes.runtimes.borrow_mut().remove("rt-old");
    let r = retire(
        &store,
        &runtimes,
        &owner("sales"),
        "Old",
        false,
        "ops",
        now(),
    )
    .await
    .unwrap();
    let Retirement::Retired(entry) = r else {
        panic!()
    };
    assert_eq!(entry.status, RuntimeState::Retired);
    assert!(runtimes.deleted.borrow().is_empty());
}
