//! An in-memory `ImageScans`: the report a test set (a clean COMPLETE scan by default), and
//! the images it was asked about.

use crate::domain::scan_gate::{ScanReport, ScanStatus};
use crate::ports::ImageScans;
use crate::Error;
use std::sync::Mutex;

#[derive(Default)]
pub struct FakeScans {
    pub report: Mutex<Option<ScanReport>>,
    pub asked: Mutex<Vec<String>>,
}

impl FakeScans {
    pub fn set(&self, report: ScanReport) {
        *self.report.lock().unwrap() = Some(report);
    }
}

impl ImageScans for FakeScans {
    async fn findings(&self, repository: &str, digest: &str) -> Result<ScanReport, Error> {
        crate::testing::fakes::record("ECR.DescribeImageScanFindings");
        self.asked
            .lock()
            .unwrap()
            .push(format!("{repository}@{digest}"));
        Ok(self.report.lock().unwrap().clone().unwrap_or(ScanReport {
            source: "ecr".into(),
            status: ScanStatus::Complete,
            reason: None,
            findings: Vec::new(),
        }))
    }
}
