//! The vulnerability gate before a deploy (issue 24): which findings of an artifact's scan
//! block its deploy under the stack's threshold (`ScanGateSeverity`, `ScanGateFixableOnly`),
//! which of them the request accepted (`deploy.acceptFindings`), and what the record keeps.
//! A scan that could not run is recorded as UNAVAILABLE, never as a pass.

use super::form::Rule;
use serde::{Deserialize, Serialize};
use std::fmt;

/// At most this many accepted finding ids in one request.
pub const MAX_ACCEPTED: usize = 32;
/// At most this many findings named in a record (the count is always whole).
pub const MAX_NAMED: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
    /// Inspector's UNTRIAGED, basic scanning's UNDEFINED, an advisory without a rating
    /// (PyPI's data): it counts as reaching any threshold — a gate fails closed.
    Unknown,
}

impl Severity {
    /// ECR's (and Inspector's) severity names; anything else is [`Severity::Unknown`].
    pub fn from_aws(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "CRITICAL" => Severity::Critical,
            "HIGH" => Severity::High,
            "MEDIUM" => Severity::Medium,
            "LOW" => Severity::Low,
            "INFORMATIONAL" => Severity::Informational,
            _ => Severity::Unknown,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Severity::Informational => 0,
            Severity::Low => 1,
            Severity::Medium => 2,
            Severity::High => 3,
            Severity::Critical | Severity::Unknown => 4,
        }
    }

    /// Whether a finding of this severity is at or above `threshold`.
    pub fn reaches(self, threshold: Severity) -> bool {
        self == Severity::Unknown || self.rank() >= threshold.rank()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }
}

/// One vulnerability of one package, as a scanner reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `CVE-…`, `GHSA-…`, `PYSEC-…`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub fix_available: bool,
}

impl Finding {
    fn named(&self, ids: &[String]) -> bool {
        ids.iter().any(|a| {
            a.eq_ignore_ascii_case(&self.id)
                || self.aliases.iter().any(|x| x.eq_ignore_ascii_case(a))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ScanStatus {
    Complete,
    /// Some packages could not be looked up (named in the scan's own summary).
    Partial,
    /// No scan result: the scanner could not run or reach its data, or the image has none yet.
    Unavailable,
}

/// What a scan of one artifact found (ECR's scan of an image, or the layer build's scan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    /// `ecr` (the registry's scan: Inspector's enhanced findings, or basic) or `pip-audit`.
    pub source: String,
    pub status: ScanStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub findings: Vec<Finding>,
}

impl ScanReport {
    pub fn unavailable(source: &str, reason: impl Into<String>) -> Self {
        ScanReport {
            source: source.into(),
            status: ScanStatus::Unavailable,
            reason: Some(reason.into()),
            findings: Vec::new(),
        }
    }
}

/// The stack's threshold: `None` turns the gate off (findings are still recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatePolicy {
    pub threshold: Option<Severity>,
    /// Only findings with a fix available block (a finding nobody can fix yet is recorded).
    pub fixable_only: bool,
    /// No scan result blocks too (`ScanGateRequireScan`): DeployRuntime first waits up to
    /// [`SCAN_WAIT_SECONDS`] for ECR's scan of a fresh image ([`GatePolicy::waits_for`]).
    pub require_scan: bool,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            threshold: Some(Severity::Critical),
            fixable_only: true,
            require_scan: false,
        }
    }
}

/// How long, from when DeployRuntime was entered, a stack that requires a scan waits for ECR's
/// (an enhanced scan of a fresh image takes minutes). The state machine retries `ScanPending`
/// (about every 20-60 s) past this bound, so DeployRuntime's own clock ends the wait.
pub const SCAN_WAIT_SECONDS: i64 = 300;

impl GatePolicy {
    /// From the stack's parameters: `CRITICAL` | `HIGH` | `MEDIUM` | `LOW` | `OFF`, `true` | `false`.
    pub fn parse(severity: &str, fixable_only: &str) -> Result<Self, String> {
        let threshold = match severity {
            "OFF" => None,
            "CRITICAL" | "HIGH" | "MEDIUM" | "LOW" => Some(Severity::from_aws(severity)),
            _ => return Err("must be CRITICAL, HIGH, MEDIUM, LOW or OFF".into()),
        };
        let fixable_only = match fixable_only {
            "true" => true,
            "false" => false,
            _ => return Err("must be true or false".into()),
        };
        Ok(GatePolicy {
            threshold,
            fixable_only,
            require_scan: false,
        })
    }

    /// Whether DeployRuntime should wait (fail `ScanPending`, retried by the state machine)
    /// rather than judge `report` now: the stack requires a scan, ECR has none yet, and it has
    /// waited less than [`SCAN_WAIT_SECONDS`]. A code artifact's scan ran in its layer build:
    /// waiting would not change it.
    pub fn waits_for(&self, report: &ScanReport, waited_seconds: i64) -> bool {
        self.require_scan
            && self.threshold.is_some()
            && report.status == ScanStatus::Unavailable
            && report.source != LAYER_SOURCE
            && waited_seconds < SCAN_WAIT_SECONDS
    }

    fn blocks(&self, f: &Finding) -> bool {
        self.threshold
            .is_some_and(|t| f.severity.reaches(t) && (f.fix_available || !self.fixable_only))
    }
}

impl fmt::Display for GatePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.threshold {
            None => f.write_str("OFF"),
            Some(t) if self.fixable_only => {
                write!(f, "{} or above with a fix available", t.as_str())
            }
            Some(t) => write!(f, "{} or above", t.as_str()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GateStatus {
    /// No finding at the threshold.
    Passed,
    /// Findings at the threshold that the request did not accept: nothing was deployed.
    Blocked,
    /// Every finding at the threshold was accepted by the request (named in `accepted`).
    Accepted,
    /// There was no scan result to judge (recorded with the reason; the deploy goes on).
    Unavailable,
    /// The stack's gate is off.
    Off,
}

/// The gate's verdict, as the record's `deployment.scan` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanGate {
    pub status: GateStatus,
    pub source: String,
    pub threshold: String,
    /// Every finding the scan reported (any severity).
    pub findings: usize,
    /// The findings at the threshold that blocked (at most [`MAX_NAMED`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking: Vec<Finding>,
    /// The findings at the threshold the request accepted (`deploy.acceptFindings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ScanGate {
    pub fn blocked(&self) -> bool {
        self.status == GateStatus::Blocked
    }

    /// The deployment's failure reason when blocked: the findings, and how to accept them.
    pub fn failure_reason(&self) -> String {
        if self.blocking.is_empty() {
            return format!(
                "the vulnerability gate ({}) blocked the deploy: {}",
                self.threshold,
                self.reason.as_deref().unwrap_or("no scan result")
            );
        }
        let named: Vec<String> = self.blocking.iter().map(describe).collect();
        format!(
            "the vulnerability gate ({}) blocked the deploy: {} finding(s) of the {} scan: {}; \
             accept them explicitly with deploy.acceptFindings",
            self.threshold,
            self.blocking.len(),
            self.source,
            named.join(", ")
        )
    }
}

fn describe(f: &Finding) -> String {
    let package = match (&f.package, &f.version) {
        (Some(p), Some(v)) => format!(" in {p} {v}"),
        (Some(p), None) => format!(" in {p}"),
        _ => String::new(),
    };
    format!("{} ({}{package})", f.id, f.severity.as_str())
}

/// The layer build's scan summary (`dependencies/<key>.scan.json`, pip-audit over the lock) as
/// a report; a layer without one (built before scans were) or an unreadable one is UNAVAILABLE.
pub fn from_layer_scan(text: Option<&[u8]>) -> ScanReport {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Summary {
        status: ScanStatus,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        findings: Vec<LayerFinding>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct LayerFinding {
        id: String,
        #[serde(default)]
        aliases: Vec<String>,
        package: String,
        #[serde(default)]
        version: Option<String>,
        #[serde(default)]
        fix_versions: Vec<String>,
    }
    let Some(text) = text else {
        return ScanReport::unavailable(LAYER_SOURCE, "the dependency layer has no scan");
    };
    match serde_json::from_slice::<Summary>(text) {
        Err(e) => ScanReport::unavailable(LAYER_SOURCE, format!("unreadable scan summary: {e}")),
        Ok(s) => ScanReport {
            source: LAYER_SOURCE.into(),
            status: s.status,
            reason: s.reason,
            findings: s
                .findings
                .into_iter()
                .map(|f| Finding {
                    id: f.id,
                    aliases: f.aliases,
                    // PyPI's advisories carry no rating: counted as reaching any threshold.
                    severity: Severity::Unknown,
                    package: Some(f.package),
                    version: f.version,
                    fix_available: !f.fix_versions.is_empty(),
                })
                .collect(),
        },
    }
}

/// The `source` of a code artifact's dependency scan.
pub const LAYER_SOURCE: &str = "pip-audit";

/// The repository name of an ECR repository URI (`<registry>/<name>`).
pub fn repository_name(repository_uri: &str) -> &str {
    repository_uri
        .split_once('/')
        .map_or(repository_uri, |(_, name)| name)
}

/// The gate's one rule: findings at the threshold block unless the request named each of them
/// (by id or alias) in `accepted`.
pub fn decide(report: &ScanReport, policy: &GatePolicy, accepted: &[String]) -> ScanGate {
    let mut gate = ScanGate {
        status: GateStatus::Passed,
        source: report.source.clone(),
        threshold: policy.to_string(),
        findings: report.findings.len(),
        blocking: Vec::new(),
        accepted: Vec::new(),
        reason: report.reason.clone(),
    };
    if policy.threshold.is_none() {
        gate.status = GateStatus::Off;
        return gate;
    }
    if report.status == ScanStatus::Unavailable {
        gate.status = GateStatus::Unavailable;
        if policy.require_scan {
            // ScanGateRequireScan: no scan result is no pass.
            gate.status = GateStatus::Blocked;
            gate.reason = Some(format!(
                "no scan result and the stack requires one (ScanGateRequireScan): {}",
                report.reason.as_deref().unwrap_or("no reason given")
            ));
        }
        return gate;
    }
    let mut over: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| policy.blocks(f))
        .collect();
    over.dedup_by(|a, b| a.id == b.id && a.package == b.package);
    let (ok, blocking): (Vec<&Finding>, Vec<&Finding>) =
        over.into_iter().partition(|f| f.named(accepted));
    gate.accepted = ok.into_iter().take(MAX_NAMED).cloned().collect();
    gate.blocking = blocking.into_iter().take(MAX_NAMED).cloned().collect();
    gate.status = if !gate.blocking.is_empty() {
        GateStatus::Blocked
    } else if !gate.accepted.is_empty() {
        GateStatus::Accepted
    } else {
        GateStatus::Passed
    };
    gate
}

/// `deploy.acceptFindings`: the finding ids a request accepts, each like `CVE-2024-12345`,
/// `GHSA-xxxx-xxxx-xxxx` or `PYSEC-2024-1`, at most [`MAX_ACCEPTED`], duplicates dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct AcceptedFindings(Vec<String>);

impl TryFrom<Vec<String>> for AcceptedFindings {
    type Error = Rule;
    fn try_from(list: Vec<String>) -> Result<Self, Rule> {
        if list.len() > MAX_ACCEPTED {
            return Err(format!("at most {MAX_ACCEPTED} finding ids").into());
        }
        let mut out: Vec<String> = Vec::new();
        for id in list {
            let ok = (3..=128).contains(&id.len())
                && id.starts_with(|c: char| c.is_ascii_alphabetic())
                && id.contains('-')
                && id
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c));
            if !ok {
                return Err("each must be a finding id like CVE-2024-12345, GHSA-xxxx-xxxx-xxxx or PYSEC-2024-1"
                    .into());
            }
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(AcceptedFindings(out))
    }
}

impl From<AcceptedFindings> for Vec<String> {
    fn from(a: AcceptedFindings) -> Vec<String> {
        a.0
    }
}

impl AcceptedFindings {
    pub fn ids(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, severity: Severity, fix: bool) -> Finding {
        Finding {
            id: id.into(),
            aliases: vec![],
            severity,
            package: Some("openssl".into()),
            version: Some("3.0.1".into()),
            fix_available: fix,
        }
    }

    fn report(findings: Vec<Finding>) -> ScanReport {
        ScanReport {
            source: "ecr".into(),
            status: ScanStatus::Complete,
            reason: None,
            findings,
        }
    }

    #[test]
    fn a_fixable_critical_blocks_by_default_naming_it() {
        let r = report(vec![
            finding("CVE-2026-0001", Severity::Critical, true),
            finding("CVE-2026-0002", Severity::High, true),
            finding("CVE-2026-0003", Severity::Critical, false),
        ]);
        let gate = decide(&r, &GatePolicy::default(), &[]);
        assert_eq!(gate.status, GateStatus::Blocked);
        assert_eq!(gate.findings, 3);
        assert_eq!(gate.blocking.len(), 1);
        let why = gate.failure_reason();
        assert!(
            why.contains("CVE-2026-0001 (CRITICAL in openssl 3.0.1)"),
            "{why}"
        );
        assert!(
            why.contains("CRITICAL or above with a fix available"),
            "{why}"
        );
        assert!(why.contains("deploy.acceptFindings"), "{why}");
    }

    #[test]
    fn accepted_findings_deploy_and_are_recorded_by_id_or_alias() {
        let mut aliased = finding("PYSEC-2026-7", Severity::Unknown, true);
        aliased.aliases = vec!["CVE-2026-0007".into()];
        let r = report(vec![
            finding("CVE-2026-0001", Severity::Critical, true),
            aliased,
        ]);
        let gate = decide(
            &r,
            &GatePolicy::default(),
            &["cve-2026-0001".into(), "CVE-2026-0007".into()],
        );
        assert_eq!(gate.status, GateStatus::Accepted);
        assert_eq!(gate.accepted.len(), 2);
        let partly = decide(&r, &GatePolicy::default(), &["CVE-2026-0001".into()]);
        assert_eq!(partly.status, GateStatus::Blocked);
        assert_eq!(partly.blocking[0].id, "PYSEC-2026-7");
    }

    #[test]
    fn a_required_scan_waits_for_ecr_within_the_bound_then_blocks() {
        let require = GatePolicy {
            require_scan: true,
            ..GatePolicy::default()
        };
        let none = ScanReport::unavailable("ecr", "ECR's scan is IN_PROGRESS: d");
        assert!(require.waits_for(&none, 0));
        assert!(require.waits_for(&none, SCAN_WAIT_SECONDS - 1));
        assert!(!require.waits_for(&none, SCAN_WAIT_SECONDS));
        // Not by default, not with the gate off, not for a complete scan, not for a code
        // artifact's scan (it ran in the layer build: waiting changes nothing).
        assert!(!GatePolicy::default().waits_for(&none, 0));
        let off = GatePolicy {
            threshold: None,
            ..require
        };
        assert!(!off.waits_for(&none, 0));
        assert!(!require.waits_for(&report(vec![]), 0));
        assert!(!require.waits_for(&ScanReport::unavailable(LAYER_SOURCE, "x"), 0));
        let gate = decide(&none, &require, &[]);
        assert_eq!(gate.status, GateStatus::Blocked);
        assert_eq!(
            gate.failure_reason(),
            "the vulnerability gate (CRITICAL or above with a fix available) blocked the deploy: \
             no scan result and the stack requires one (ScanGateRequireScan): ECR's scan is \
             IN_PROGRESS: d"
        );
    }

    #[test]
    fn an_unavailable_scan_is_recorded_not_passed_and_off_is_off() {
        let gate = decide(
            &ScanReport::unavailable("ecr", "no scan yet"),
            &GatePolicy::default(),
            &[],
        );
        assert_eq!(
            (gate.status, gate.reason.as_deref()),
            (GateStatus::Unavailable, Some("no scan yet"))
        );
        let off = GatePolicy::parse("OFF", "true").unwrap();
        let r = report(vec![finding("CVE-2026-0001", Severity::Critical, true)]);
        assert_eq!(decide(&r, &off, &[]).status, GateStatus::Off);
        let clean = decide(
            &report(vec![finding("CVE-1", Severity::Low, true)]),
            &GatePolicy::default(),
            &[],
        );
        assert_eq!(clean.status, GateStatus::Passed);
    }

    #[test]
    fn thresholds_read_from_the_stack_parameters() {
        let p = GatePolicy::parse("HIGH", "false").unwrap();
        assert!(p.blocks(&finding("CVE-1", Severity::High, false)));
        assert!(!p.blocks(&finding("CVE-1", Severity::Medium, true)));
        assert!(p.blocks(&finding("CVE-1", Severity::Unknown, false)));
        assert_eq!(p.to_string(), "HIGH or above");
        assert!(GatePolicy::parse("SEVERE", "true").is_err());
        assert!(GatePolicy::parse("HIGH", "yes").is_err());
        assert_eq!(Severity::from_aws("UNTRIAGED"), Severity::Unknown);
    }

    #[test]
    fn a_layer_scan_reads_as_a_report_and_a_missing_one_is_unavailable() {
        let text = br#"{"status": "COMPLETE", "reason": null, "packages": 2, "findings": [
            {"id": "PYSEC-2026-1", "aliases": ["CVE-2026-9"], "package": "requests",
             "version": "2.0", "fixVersions": ["2.1"], "severity": "UNKNOWN"}]}"#;
        let r = from_layer_scan(Some(text));
        assert_eq!((r.status, r.findings.len()), (ScanStatus::Complete, 1));
        assert!(r.findings[0].fix_available && r.findings[0].severity == Severity::Unknown);
        let gate = decide(&r, &GatePolicy::default(), &["CVE-2026-9".into()]);
        assert_eq!(gate.status, GateStatus::Accepted);
        assert_eq!(from_layer_scan(None).status, ScanStatus::Unavailable);
        assert_eq!(from_layer_scan(Some(b"{")).status, ScanStatus::Unavailable);
    }

    #[test]
    fn accepted_ids_are_checked() {
        let ok = AcceptedFindings::try_from(vec![
            "CVE-2024-1".into(),
            "CVE-2024-1".into(),
            "GHSA-abcd-efgh-ijkl".into(),
        ]);
        assert_eq!(ok.unwrap().ids().len(), 2);
        for bad in ["", "CVE", "cve 2024", "-CVE-1", "CVE-2024-1;rm"] {
            assert!(
                AcceptedFindings::try_from(vec![bad.to_string()]).is_err(),
                "{bad}"
            );
        }
        assert!(AcceptedFindings::try_from(vec!["CVE-1".to_string(); MAX_ACCEPTED + 1]).is_err());
    }
}
