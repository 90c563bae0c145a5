//! The `Jobs` concern of the primary store (`src/store/jobs.rs`), as a contract both engines keep:
//! the same calls give the same answers on SQLite and PostgreSQL. No worker runs here; the
//! worker's side of the job table is `queue.rs` and `runtime.rs`.

use chrono::{Duration as Days, Utc};
use revisit::{
    config::Backend,
    store::{JobState, NewJob},
};
use revisit_jobs::{Job, Noop};

use crate::harness::*;

crate::on_both_backends!(
    a_keyed_job_exists_once_and_reads_back_as_it_was_enqueued,
    a_cancelled_job_is_dead_until_retried_with_a_full_set_of_attempts,
    a_cron_tick_is_claimed_once_and_remembered,
    pruning_removes_dead_jobs_and_old_history_and_clearing_empties_a_queue,
);

fn noop(seq: u64) -> Noop {
    Noop {
        seq,
        enqueued_at_micros: 0,
        sleep_ms: 0,
    }
}

fn job(seq: u64, key: Option<&str>) -> NewJob {
    NewJob {
        key: key.map(str::to_owned),
        ..NewJob::plain(&noop(seq), 3)
    }
}

async fn a_keyed_job_exists_once_and_reads_back_as_it_was_enqueued(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let store = env.store();
    let first = store.enqueue(job(1, Some("once"))).await.unwrap();
    assert!(first.is_some());
    assert_eq!(store.enqueue(job(2, Some("once"))).await.unwrap(), None);
    store.enqueue(job(3, None)).await.unwrap().unwrap();
    assert_eq!(
        store
            .enqueue_many(Noop::QUEUE, vec![serde_json::to_vec(&noop(4)).unwrap()], 3)
            .await
            .unwrap(),
        1
    );

    let id = first.unwrap();
    let args = store.job_args(&id).await.unwrap().unwrap();
    assert_eq!(args.queue, Noop::QUEUE);
    let back: Noop = serde_json::from_slice(&args.payload).unwrap();
    assert_eq!(back.seq, 1, "the first insert's args stay");
    let status = store.job_state(&id).await.unwrap().unwrap();
    assert_eq!(
        (status.state.as_str(), status.last_error),
        ("pending", None)
    );
    assert!(store.job_state("no-such-job").await.unwrap().is_none());

    let listed = store
        .list_jobs(Some(JobState::Pending), Some(Noop::QUEUE), 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|j| j.state == "pending" && j.attempts == 0 && j.max_attempts == 3)
    );
    let counts = store.job_counts().await.unwrap();
    let noops: Vec<_> = counts.iter().filter(|c| c.queue == Noop::QUEUE).collect();
    assert_eq!(noops.len(), 1, "{counts:?}");
    assert_eq!((noops[0].state.as_str(), noops[0].count), ("pending", 3));
    let summary = store.queue_summary().await.unwrap();
    assert_eq!((summary.pending, summary.failed), (3, 0));
    assert!(!store.queue_is_idle(Noop::QUEUE).await.unwrap());
}

async fn a_cancelled_job_is_dead_until_retried_with_a_full_set_of_attempts(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let store = env.store();
    let id = store.enqueue(job(1, None)).await.unwrap().unwrap();
    assert!(store.cancel_job(&id).await.unwrap());
    assert!(!store.cancel_job("no-such-job").await.unwrap());
    assert_eq!(store.job_state(&id).await.unwrap().unwrap().state, "failed");
    let summary = store.queue_summary().await.unwrap();
    assert_eq!((summary.pending, summary.failed), (0, 1));
    assert_eq!(
        store
            .list_jobs(Some(JobState::Failed), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    assert_eq!(
        store.retry_jobs(Some(&id), None).await.unwrap(),
        vec![id.clone()]
    );
    let again = store
        .list_jobs(Some(JobState::Pending), Some(Noop::QUEUE), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].attempts, again[0].max_attempts), (0, 3));
    assert!(
        store
            .retry_jobs(None, Some(Noop::QUEUE))
            .await
            .unwrap()
            .is_empty(),
        "nothing is dead any more"
    );
}

async fn a_cron_tick_is_claimed_once_and_remembered(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let store = env.store();
    let tick = Utc::now() - Days::hours(1);
    assert!(!store.cron_ran_before("bench", tick).await.unwrap());
    let claimed = store
        .claim_cron_tick("bench", tick, job(1, None))
        .await
        .unwrap();
    assert!(claimed.is_some());
    assert_eq!(
        store
            .claim_cron_tick("bench", tick, job(2, None))
            .await
            .unwrap(),
        None,
        "a second producer finds the tick taken and enqueues nothing"
    );
    assert_eq!(
        store
            .list_jobs(None, Some(Noop::QUEUE), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .cron_ran_before("bench", tick + Days::minutes(1))
            .await
            .unwrap()
    );
    assert!(!store.cron_ran_before("bench", tick).await.unwrap());
    assert!(
        !store
            .cron_ran_before("another", tick + Days::minutes(1))
            .await
            .unwrap()
    );
}

async fn pruning_removes_dead_jobs_and_old_history_and_clearing_empties_a_queue(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let store = env.store();
    let dead = store.enqueue(job(1, None)).await.unwrap().unwrap();
    store.cancel_job(&dead).await.unwrap();
    let waiting = store.enqueue(job(2, None)).await.unwrap().unwrap();
    store
        .claim_cron_tick("bench", Utc::now() - Days::days(3), job(3, None))
        .await
        .unwrap();

    // A day's retention keeps what has just happened.
    let day = std::time::Duration::from_secs(86_400);
    let kept = store.prune(day, day).await.unwrap();
    assert_eq!((kept.dead_jobs, kept.cron_ticks), (0, 1), "{kept:?}");
    assert!(store.job_state(&dead).await.unwrap().is_some());

    // No retention: the dead job goes; a job still waiting is never pruned.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let zero = std::time::Duration::ZERO;
    let pruned = store.prune(zero, zero).await.unwrap();
    assert_eq!(pruned.dead_jobs, 1, "{pruned:?}");
    assert!(store.job_state(&dead).await.unwrap().is_none());
    assert!(store.job_state(&waiting).await.unwrap().is_some());

    store.clear_queue(Noop::QUEUE).await.unwrap();
    assert!(store.queue_is_idle(Noop::QUEUE).await.unwrap());
    assert!(
        store
            .list_jobs(None, Some(Noop::QUEUE), 10)
            .await
            .unwrap()
            .is_empty()
    );
}
