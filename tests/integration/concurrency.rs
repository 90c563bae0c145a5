//! Several processes on one database: two worker daemons (every queue, cron producers on) while
//! other processes enqueue imports and scans, list jobs and build reports. On SQLite this is
//! where "database is locked" would show; on PostgreSQL it must hold as well.

use std::{process::Stdio, time::Duration};

use revisit::store::Backend;

use crate::harness::*;

crate::on_both_backends!(a_second_process_works_while_worker_daemons_write);

fn run_cli(env: &[(String, String)], cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().cloned())
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
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/import/initial");
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
            .filter(|(_, s, _)| s == "pending" || s == "running")
            .map(|(_, _, n)| n)
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
