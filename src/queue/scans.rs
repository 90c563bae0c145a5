//! The revisit scans as jobs: which job runs the scan of an occasion, for the CLI, the API and
//! anything else that starts one by hand (cron builds the same jobs from its ticks).

use revisit_jobs::{CheckinScan, CycleScan, Job, ReminderScan, ScanScope, WinbackScan};

use crate::{config::Settings, domain::followup::Occasion, store::NewJob};

/// The four scans: each occasion's queue. Their args all read as a [`ScanScope`].
const SCANS: [(Occasion, &str); 4] = [
    (Occasion::Birthday, ReminderScan::QUEUE),
    (Occasion::Checkin, CheckinScan::QUEUE),
    (Occasion::Cycle, CycleScan::QUEUE),
    (Occasion::Winback, WinbackScan::QUEUE),
];

/// The queues of the four scans.
pub const SCAN_QUEUES: [&str; 4] = [SCANS[0].1, SCANS[1].1, SCANS[2].1, SCANS[3].1];

/// The occasion a scan queue scans for.
pub fn occasion_of(queue: &str) -> Option<Occasion> {
    SCANS.iter().find(|(_, q)| *q == queue).map(|(o, _)| *o)
}

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
            assert_eq!(occasion_of(queue), Some(occasion));
            let back: ScanScope = serde_json::from_slice(&job.payload).unwrap();
            assert_eq!(back, scope, "{occasion:?}");
        }
    }
}
