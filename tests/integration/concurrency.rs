//! Several processes on one database: two worker daemons (every queue, cron producers on) while
//! other processes enqueue imports and scans, list jobs and build reports. On SQLite this is
//! where "database is locked" would show; on PostgreSQL it must hold as well.

use std::{process::Stdio, time::Duration};

use revisit::config::Backend;
use revisit_jobs::Job;

use crate::harness::*;

crate::on_both_backends!(
    a_second_process_works_while_worker_daemons_write,
    a_large_import_does_not_stall_heartbeats_so_its_job_is_never_rescued,
);

fn run_cli(env: &[(String, String)], cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(with_vectors_dir(env.to_vec()))
        .stdin(Stdio::null())
        .output()
        .expect("run revisit")
}

async fn a_second_process_works_while_worker_daemons_write(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    // The daemons run in an empty folder: the hourly incremental check finds nothing there.
    let cwd = tempfile::tempdir().unwrap();
    // Logs go to files: a pipe nobody reads until the end would fill up and stall the daemon.
    let spawn_daemon = |n: usize| {
        let log = cwd.path().join(format!("worker-{n}.log"));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
            .arg("worker")
            .current_dir(cwd.path())
            .env_clear()
            .envs(env.child_env(&[]))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        (child, log)
    };
    let daemons = [spawn_daemon(1), spawn_daemon(2)];
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/import/initial");
    let vars = env.child_env(&[("RUST_LOG", "warn")]);
    let cwd_path = cwd.path().to_path_buf();
    let outputs = tokio::task::spawn_blocking(move || {
        let data = data.display().to_string();
        let mut outs: Vec<(String, std::process::Output)> = Vec::new();
        let mut run = |args: &[&str]| outs.push((args.join(" "), run_cli(&vars, &cwd_path, args)));
        for round in 0..3 {
            run(&["import", &data, "--wait"]);
            run(&["jobs", "list", "--limit", "5"]);
            run(&["run-reminders", "--test-mode"]);
            run(&["report"]);
            if round == 2 {
                run(&["run-reminders", "--test-mode", "--wait"]);
            }
        }
        outs
    })
    .await
    .unwrap();
    for (args, out) in &outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "`revisit {args}` failed:\n{stdout}\n{stderr}"
        );
        assert!(!stderr.contains("locked"), "{stderr}");
    }
    // Everything the daemons were given got done; nothing is left failed.
    eventually(Duration::from_secs(60), "the queues to drain", || async {
        let counts = env.store().job_counts().await.unwrap();
        let open: i64 = counts
            .iter()
            .filter(|c| c.state == "pending" || c.state == "running")
            .map(|c| c.count)
            .sum();
        (open == 0).then_some(())
    })
    .await;
    let failed = env
        .store()
        .list_jobs(Some(revisit::store::JobState::Failed), None, 10)
        .await
        .unwrap();
    assert!(failed.is_empty(), "failed jobs: {failed:?}");
    assert_eq!(env.count("SELECT count(*) FROM customers").await, 63);
    for (mut d, log) in daemons {
        let _ = d.start_kill();
        let _ = d.wait().await;
        let stderr = std::fs::read_to_string(log).unwrap();
        assert!(!stderr.contains("database is locked"), "{stderr}");
        assert!(
            !stderr.contains("ERROR"),
            "a daemon logged an error:\n{stderr}"
        );
    }
}

/// Two workers of the import queue (heartbeat 1 s, dead after 5 missed): one imports a large
/// file while the other watches its heartbeats. On SQLite an import that held the write lock
/// for seconds would stall the importer's heartbeat, and the watcher would rescue the job and
/// run it a second time.
async fn a_large_import_does_not_stall_heartbeats_so_its_job_is_never_rescued(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let n = 60_000;
    let customers: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"customer_code":"BJ-HA-001-C{i:06}","person":{{"name":"客户","birthday":"1990-01-01","phone":"135{i:08}"}},"notes":"术后注意防晒保湿，定期回访了解恢复情况。"}}"#
            )
        })
        .collect();
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &format!("[{}]", customers.join(",")),
        ),
    ]);
    let spawn = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
            .args(["worker", "--no-cron", "--queue", "import.file"])
            .env_clear()
            .envs(env.child_env(&[("REVISIT__WORKER__MISSED_HEARTBEATS", "5")]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    let plan = revisit::import::layout::plan(dir.path()).unwrap();
    let (first, rest) = plan.split_first().unwrap();
    let job = revisit_jobs::ImportFile {
        source: first.clone(),
        then: rest.to_vec(),
        batch: "large".into(),
    };
    revisit::store::enqueue(env.store(), &env.app.settings, &job, None)
        .await
        .unwrap();
    // Both files logged, and both jobs acknowledged (the log commits a moment before the ack).
    eventually(Duration::from_secs(120), "the large import", || async {
        let jobs = env.jobs_of(revisit_jobs::ImportFile::QUEUE).await;
        (env.store().import_progress("large").await.unwrap() == 2
            && jobs.iter().all(|j| j.state == "done"))
        .then_some(())
    })
    .await;
    a.kill().await.unwrap();
    b.kill().await.unwrap();
    let jobs = env.jobs_of(revisit_jobs::ImportFile::QUEUE).await;
    assert!(
        jobs.iter().all(|j| j.attempts == 1),
        "a job was rescued from a live worker: {jobs:?}"
    );
    assert_eq!(env.count("SELECT count(*) FROM customers").await, n as i64);
}
