//! ECR's scan of an image (DescribeImageScanFindings) as a `domain::scan_gate::ScanReport`:
//! Inspector's enhanced findings (severity, fix available, the vulnerable packages) and basic
//! scanning's findings (fix unknown: counted as fixable, so a gate fails closed). No scan yet,
//! a scan still running or failed, or no image: UNAVAILABLE with ECR's words.

use super::classify;
use super::ecr::Ecr;
use crate::domain::scan_gate::{Finding, ScanReport, ScanStatus, Severity};
use crate::ports::ImageScans;
use crate::Error;
use aws_sdk_ecr::operation::describe_image_scan_findings::{
    DescribeImageScanFindingsError as E, DescribeImageScanFindingsOutput,
};
use aws_sdk_ecr::types::{EnhancedImageScanFinding, ImageIdentifier, ImageScanFinding};

/// The report's `source`.
pub const SOURCE: &str = "ecr";

impl ImageScans for Ecr {
    async fn findings(&self, repository: &str, digest: &str) -> Result<ScanReport, Error> {
        let mut report = ScanReport {
            source: SOURCE.into(),
            status: ScanStatus::Complete,
            reason: None,
            findings: Vec::new(),
        };
        let mut token: Option<String> = None;
        loop {
            let page = self.page(repository, digest, token.take()).await?;
            let out = match page {
                Ok(out) => out,
                Err(unavailable) => return Ok(unavailable),
            };
            let status = out
                .image_scan_status()
                .and_then(|s| s.status())
                .map(|s| s.as_str().to_string());
            if !matches!(status.as_deref(), Some("COMPLETE") | Some("ACTIVE")) {
                let why = out
                    .image_scan_status()
                    .and_then(|s| s.description())
                    .unwrap_or("");
                return Ok(ScanReport::unavailable(
                    SOURCE,
                    format!(
                        "ECR's scan is {}: {why}",
                        status.as_deref().unwrap_or("missing")
                    ),
                ));
            }
            if let Some(f) = out.image_scan_findings() {
                report
                    .findings
                    .extend(f.enhanced_findings().iter().map(enhanced));
                report.findings.extend(f.findings().iter().map(basic));
            }
            token = out.next_token().map(String::from);
            if token.is_none() {
                return Ok(report);
            }
        }
    }
}

impl Ecr {
    /// One page of findings; `Err(report)` when ECR has no scan of that image (UNAVAILABLE).
    async fn page(
        &self,
        repository: &str,
        digest: &str,
        token: Option<String>,
    ) -> Result<Result<DescribeImageScanFindingsOutput, ScanReport>, Error> {
        let out = self
            .client
            .describe_image_scan_findings()
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Ok(out)),
            Err(e) => match e.as_service_error() {
                Some(
                    err @ (E::ScanNotFoundException(_)
                    | E::ImageNotFoundException(_)
                    | E::RepositoryNotFoundException(_)),
                ) => Ok(Err(ScanReport::unavailable(
                    SOURCE,
                    format!("ECR has no scan of {repository}@{digest}: {err}"),
                ))),
                _ => Err(classify("ECR.DescribeImageScanFindings", e)),
            },
        }
    }
}

fn enhanced(f: &EnhancedImageScanFinding) -> Finding {
    let details = f.package_vulnerability_details();
    let package = details.and_then(|d| d.vulnerable_packages().first());
    Finding {
        id: details
            .and_then(|d| d.vulnerability_id())
            .or(f.title())
            .unwrap_or("unnamed")
            .to_string(),
        aliases: details
            .map(|d| d.related_vulnerabilities().to_vec())
            .unwrap_or_default(),
        severity: Severity::from_aws(f.severity().unwrap_or("")),
        package: package.and_then(|p| p.name()).map(String::from),
        version: package.and_then(|p| p.version()).map(String::from),
        // Inspector says YES, PARTIAL or NO.
        fix_available: matches!(f.fix_available(), Some("YES") | Some("PARTIAL")),
    }
}

fn basic(f: &ImageScanFinding) -> Finding {
    let attribute = |key: &str| {
        f.attributes()
            .iter()
            .find(|a| a.key() == key)
            .and_then(|a| a.value())
            .map(String::from)
    };
    Finding {
        id: f.name().unwrap_or("unnamed").to_string(),
        aliases: Vec::new(),
        severity: Severity::from_aws(f.severity().map_or("", |s| s.as_str())),
        package: attribute("package_name"),
        version: attribute("package_version"),
        fix_available: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecr::types::error::ScanNotFoundException;
    use aws_sdk_ecr::types::{
        ImageScanFindings, ImageScanStatus, PackageVulnerabilityDetails, ScanStatus as Aws,
        VulnerablePackage,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    const DIGEST: &str = "sha256:abababababababababababababababababababababababababababababababab";

    fn critical(id: &str, fix: &str) -> EnhancedImageScanFinding {
        EnhancedImageScanFinding::builder()
            .severity("CRITICAL")
            .fix_available(fix)
            .package_vulnerability_details(
                PackageVulnerabilityDetails::builder()
                    .vulnerability_id(id)
                    .vulnerable_packages(
                        VulnerablePackage::builder()
                            .name("openssl")
                            .version("3.0.1")
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    fn page(
        status: Aws,
        findings: Vec<EnhancedImageScanFinding>,
        next: Option<&str>,
    ) -> DescribeImageScanFindingsOutput {
        DescribeImageScanFindingsOutput::builder()
            .image_scan_status(
                ImageScanStatus::builder()
                    .status(status)
                    .description("d")
                    .build(),
            )
            .image_scan_findings(
                ImageScanFindings::builder()
                    .set_enhanced_findings(Some(findings))
                    .build(),
            )
            .set_next_token(next.map(String::from))
            .build()
    }

    #[tokio::test]
    async fn enhanced_findings_of_every_page_become_the_report() {
        let first = mock!(aws_sdk_ecr::Client::describe_image_scan_findings)
            .match_requests(|r| {
                r.next_token().is_none()
                    && r.image_id().and_then(|i| i.image_digest()) == Some(DIGEST)
            })
            .then_output(|| {
                page(
                    Aws::Active,
                    vec![critical("CVE-2026-0001", "YES")],
                    Some("t"),
                )
            });
        let second = mock!(aws_sdk_ecr::Client::describe_image_scan_findings)
            .match_requests(|r| r.next_token() == Some("t"))
            .then_output(|| page(Aws::Active, vec![critical("CVE-2026-0002", "NO")], None));
        let client = mock_client!(aws_sdk_ecr, RuleMode::MatchAny, [&first, &second]);
        let report = Ecr::new(client)
            .findings("agentbuild", DIGEST)
            .await
            .unwrap();
        assert_eq!(report.status, ScanStatus::Complete);
        let ids: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.fix_available))
            .collect();
        assert_eq!(ids, [("CVE-2026-0001", true), ("CVE-2026-0002", false)]);
        assert_eq!(report.findings[0].package.as_deref(), Some("openssl"));
        assert_eq!(report.findings[0].severity, Severity::Critical);
    }

    #[tokio::test]
    async fn no_scan_or_a_scan_in_progress_is_unavailable_not_clean() {
        let none = mock!(aws_sdk_ecr::Client::describe_image_scan_findings).then_error(|| {
            E::ScanNotFoundException(ScanNotFoundException::builder().message("no scan").build())
        });
        let client = mock_client!(aws_sdk_ecr, [&none]);
        let report = Ecr::new(client)
            .findings("agentbuild", DIGEST)
            .await
            .unwrap();
        assert_eq!(report.status, ScanStatus::Unavailable);
        let running = mock!(aws_sdk_ecr::Client::describe_image_scan_findings)
            .then_output(|| page(Aws::InProgress, vec![], None));
        let client = mock_client!(aws_sdk_ecr, [&running]);
        let report = Ecr::new(client)
            .findings("agentbuild", DIGEST)
            .await
            .unwrap();
        assert_eq!(report.status, ScanStatus::Unavailable);
        assert!(report.reason.unwrap().contains("IN_PROGRESS"));
    }
}
