//! The revisit scans as jobs: which job runs the scan of an occasion, for the CLI, the API and
//! anything else that starts one by hand (cron builds the same jobs from its ticks).

use revisit_jobs::{CheckinScan, CycleScan, Job, ReminderScan, ScanScope, WinbackScan};

use crate::{config::Settings, domain::followup::Occasion, store::NewJob};

/// The queues of the four scans; their args all read as a [`ScanScope`].
pub const SCAN_QUEUES: [&str; 4] = [
    ReminderScan::QUEUE,
    CheckinScan::QUEUE,
    CycleScan::QUEUE,
    WinbackScan::QUEUE,
];

/// The job that scans for `occasion` within `scope`, and its queue.
pub fn scan_job(
    settings: &Settings,
    occasion: Occasion,
    scope: ScanScope,
) -> (NewJob, &'static str) {
    match occasion {
        Occasion::Birthday => (
            NewJob::of(
                settings,
                &ReminderScan {
                    institution: scope.institution,
                    test_mode: scope.test_mode,
                    today: scope.today,
                },
                None,
            ),
            ReminderScan::QUEUE,
        ),
        Occasion::Checkin => (
            NewJob::of(settings, &CheckinScan { scope }, None),
            CheckinScan::QUEUE,
        ),
        Occasion::Cycle => (
            NewJob::of(settings, &CycleScan { scope }, None),
            CycleScan::QUEUE,
        ),
        Occasion::Winback => (
            NewJob::of(settings, &WinbackScan { scope }, None),
            WinbackScan::QUEUE,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scan_reads_as_a_scope() {
        let settings = Settings::load_from(None, &[]).unwrap();
        let scope = ScanScope {
            institution: Some("BJ-HA-001".into()),
            test_mode: true,
            today: chrono::NaiveDate::from_ymd_opt(2026, 3, 2),
        };
        for occasion in Occasion::ALL {
            let (job, queue) = scan_job(&settings, occasion, scope.clone());
            assert_eq!(job.queue, queue);
            assert!(SCAN_QUEUES.contains(&queue));
            let back: ScanScope = serde_json::from_slice(&job.payload).unwrap();
            assert_eq!(back, scope, "{occasion:?}");
        }
    }
}
