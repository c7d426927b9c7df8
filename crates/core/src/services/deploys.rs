//! The agent's deploy ledger (`domain::supersede`): a deploy claims it with a conditional write
//! before it touches the runtime, so of two deploys the older one sees the newer's claim. A
//! promote neither claims nor reads it: the ledger orders the deploys of the agent's own target
//! (its latest's runtime and endpoint), which a promote may not take (`domain::promote`).

use crate::domain::pin::{self, pin_key, Pin};
use crate::domain::plan::BuildPlan;
use crate::domain::record::{BuildRecord, BuildState};
use crate::domain::supersede::{decide, ledger_key, rank_of_build, Claim, Rank, Superseded};
use crate::ports::{ObjectStore, Tagged};
use crate::services::objects::{self, parse_json, Decision};
use crate::Error;
use chrono::{DateTime, Utc};

/// Claims the runtime of the plan's agent for this build (`Ok(Ok(()))`: go on and
/// create/update it), or answers why a newer build holds it (`Ok(Err(why))`: leave it).
/// `latest` is the agent's latest record, which stands for the ledger until it exists.
pub async fn claim<S: ObjectStore>(
    store: &S,
    plan: &BuildPlan,
    build: &BuildState,
    container_uri: &str,
    latest: Option<&BuildRecord>,
    now: DateTime<Utc>,
) -> Result<Result<(), Superseded>, Error> {
    if plan.promoted_from.is_some() {
        return Ok(Ok(()));
    }
    if let Err(why) = unpinned(store, plan, &rank_of_build(plan, build)).await? {
        return Ok(Err(why));
    }
    let key = ledger_key(&plan.project, &plan.agent);
    let candidate = Claim {
        rank: rank_of_build(plan, build),
        execution_arn: plan.execution_arn.clone(),
        container_uri: container_uri.to_string(),
        claimed_at: now,
    };
    objects::update(store, &key, |current: Option<&Tagged>| {
        let stored: Option<Claim> = current
            .map(|t| parse_json(&key, &t.bytes, "a deploy ledger"))
            .transpose()?;
        if let Err(why) = decide(stored.as_ref().map(|c| &c.rank), latest, &candidate.rank) {
            return Ok(Decision::Keep(Err(why)));
        }
        if stored
            .as_ref()
            .is_some_and(|c| c.rank.build_id == candidate.rank.build_id)
        {
            // A retried step: the claim is already this build's.
            return Ok(Decision::Keep(Ok(())));
        }
        let body = serde_json::to_vec(&candidate)
            .map_err(|e| Error::InvalidState(format!("{key}: {e}")))?;
        Ok(Decision::Write(body, Ok(())))
    })
    .await
}

/// Right before an endpoint moves: whether the ledger still names this build, or a newer one
/// claimed the agent since (then the endpoint stays with it: `Err(why)`).
pub async fn still_ours<S: ObjectStore>(
    store: &S,
    plan: &BuildPlan,
    build: &BuildState,
) -> Result<Result<(), Superseded>, Error> {
    if plan.promoted_from.is_some() {
        return Ok(Ok(()));
    }
    if let Err(why) = unpinned(store, plan, &rank_of_build(plan, build)).await? {
        return Ok(Err(why));
    }
    let key = ledger_key(&plan.project, &plan.agent);
    let stored: Option<Claim> = objects::read_json(store, &key, "a deploy ledger").await?;
    Ok(decide(
        stored.as_ref().map(|c| &c.rank),
        None,
        &rank_of_build(plan, build),
    ))
}

/// Whether a rollback pinned the plan's endpoint against this deploy (`domain::pin`).
async fn unpinned<S: ObjectStore>(
    store: &S,
    plan: &BuildPlan,
    rank: &Rank,
) -> Result<Result<(), Superseded>, Error> {
    let Some(spec) = &plan.deploy else {
        return Ok(Ok(()));
    };
    let key = pin_key(
        &plan.project,
        &plan.agent,
        &spec.runtime_name,
        spec.endpoint(),
    );
    let found: Option<Pin> = objects::read_json(store, &key, "an endpoint pin").await?;
    Ok(pin::decide(found.as_ref(), rank, spec.endpoint()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::{plan, running, t};
    use crate::testing::fakes::FakeStore;

    fn built(id: &str, submitted: &str, finished: &str) -> (BuildPlan, BuildState) {
        let mut p = plan();
        p.build_id = id.into();
        p.submitted_at = Some(t(submitted));
        let mut b = running();
        b.finished_at = Some(t(finished));
        (p, b)
    }

    #[tokio::test]
    async fn the_newer_claim_stands_and_the_older_deploy_is_superseded() {
        let store = FakeStore::default();
        let now = t("2026-11-28T11:00:00Z");
        let (pn, bn) = built("b-new", "2026-11-28T10:00:00Z", "2026-11-28T10:05:00Z");
        let (po, bo) = built("b-old", "2026-11-28T09:00:00Z", "2026-11-28T10:30:00Z");
        assert_eq!(
            claim(&store, &pn, &bn, "r@new", None, now).await.unwrap(),
            Ok(())
        );
        let why = claim(&store, &po, &bo, "r@old", None, now)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(why.by, "b-new");
        let ledger: Claim = serde_json::from_slice(
            &store
                .get("agents/nexus-ai/sales/deployed.json")
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (ledger.rank.build_id.as_str(), ledger.container_uri.as_str()),
            ("b-new", "r@new")
        );
        // A retry of the newer one keeps its claim; a later build of a newer submission takes it.
        assert_eq!(
            claim(&store, &pn, &bn, "r@new", None, now).await.unwrap(),
            Ok(())
        );
        let (p3, b3) = built("b-3", "2026-11-28T10:10:00Z", "2026-11-28T10:40:00Z");
        assert_eq!(
            claim(&store, &p3, &b3, "r@3", None, now).await.unwrap(),
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_promote_of_an_older_build_neither_claims_nor_is_superseded() {
        let store = FakeStore::default();
        let now = t("2026-11-28T11:00:00Z");
        let (pn, bn) = built("b-new", "2026-11-28T10:00:00Z", "2026-11-28T10:05:00Z");
        claim(&store, &pn, &bn, "r@new", None, now)
            .await
            .unwrap()
            .unwrap();
        let (mut promote, b) = built("b-promote", "2026-11-28T09:00:00Z", "2026-11-28T09:05:00Z");
        promote.promoted_from = Some("b-old".into());
        assert_eq!(
            claim(&store, &promote, &b, "r@old", None, now)
                .await
                .unwrap(),
            Ok(())
        );
        assert_eq!(still_ours(&store, &promote, &b).await.unwrap(), Ok(()));
        let ledger: Claim = serde_json::from_slice(
            &store
                .get("agents/nexus-ai/sales/deployed.json")
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            ledger.rank.build_id, "b-new",
            "the agent's own target keeps its claim"
        );
    }

    #[tokio::test]
    async fn a_rollback_pin_holds_against_a_rebuild_of_its_submission_not_a_newer_one() {
        let store = FakeStore::default();
        let now = t("2026-11-28T13:00:00Z");
        let (mut rebuild, b) = built("sched-1", "2026-11-28T10:00:00Z", "2026-11-28T12:30:00Z");
        let spec: crate::domain::deploy_request::DeployOptions = serde_json::from_value(
            serde_json::json!({"protocol": "HTTP", "networkMode": "PUBLIC"}),
        )
        .unwrap();
        rebuild.deploy = Some(spec.resolve("stack", "nexus-ai", "sales"));
        let name = rebuild.deploy.as_ref().unwrap().runtime_name.clone();
        let pin = Pin {
            at: t("2026-11-28T12:00:00Z"),
            build_id: "b-1".into(),
            version: "1".into(),
            by: "ops".into(),
        };
        store.seed(
            &pin_key("nexus-ai", "sales", &name, "live"),
            serde_json::to_vec(&pin).unwrap(),
        );
        let why = claim(&store, &rebuild, &b, "r@x", None, now)
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            why.reason.contains("rolled back to build b-1"),
            "{}",
            why.reason
        );
        assert!(still_ours(&store, &rebuild, &b).await.unwrap().is_err());
        assert!(store
            .get("agents/nexus-ai/sales/deployed.json")
            .await
            .unwrap()
            .is_none());
        let mut fresh = rebuild.clone();
        fresh.build_id = "api-new".into();
        fresh.submitted_at = None;
        fresh.requested_at = t("2026-11-28T12:10:00Z");
        assert_eq!(
            claim(&store, &fresh, &b, "r@y", None, now).await.unwrap(),
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_ledger_that_is_no_claim_is_invalid_state() {
        let store = FakeStore::default();
        store.seed("agents/nexus-ai/sales/deployed.json", b"[]".to_vec());
        let (p, b) = built("b-1", "2026-11-28T10:00:00Z", "2026-11-28T10:05:00Z");
        let err = claim(&store, &p, &b, "r@1", None, t("2026-11-28T11:00:00Z"))
            .await
            .unwrap_err();
        assert_eq!(err.name(), "InvalidState");
    }
}
