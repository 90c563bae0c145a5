//! Prometheus metrics (issue #24): a worker daemon that serves no API answers /metrics, the
//! figures move with the work it does, `promtool check metrics` accepts them, and the API's
//! /metrics shows the queues' state from the database.

use std::{sync::Arc, time::Duration};

use revisit::config::Backend;

use crate::harness::*;

crate::on_both_backends!(metrics_move_with_the_work_and_promtool_accepts_them);

/// deploy/prometheus/alerts.yml is valid and its alerts fire when, and only when, they should
/// (alerts.test.yml: a queue not draining but not a paused one, dead jobs, projection lag).
#[test]
fn alert_rules_pass_their_unit_tests() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("promtool (Debian's prometheus package; .ci/run installs it)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every metric the Grafana dashboard and the alert rules query is one a scrape has.
fn queried_metrics_exist(scraped: &str) {
    let families: Vec<&str> = scraped
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let known = |name: &str| {
        families.iter().any(|f| {
            name == *f
                || ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(f))
        })
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard =
        std::fs::read_to_string(format!("{root}/deploy/grafana/revisit-dashboard.json")).unwrap();
    let rules = std::fs::read_to_string(format!("{root}/deploy/prometheus/alerts.yml")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    queries.push(rules);
    let mut used = 0;
    for q in &queries {
        for (i, _) in q.match_indices("revisit_") {
            let name: String = q[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.starts_with("revisit_")
                && q[..i].ends_with(|c: char| {
                    !c.is_ascii_alphanumeric() && c != '_' && c != '-' && c != '.'
                })
            {
                assert!(known(&name), "{name} is queried but not exported");
                used += 1;
            }
        }
    }
    assert!(used > 15, "the dashboard and rules query {used} series");
}

async fn scrape(addr: &str) -> String {
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert!(r.status().is_success());
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    r.text().await.unwrap()
}

/// The value of one sample (`name{labels}`), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused the output:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn metrics_move_with_the_work_and_promtool_accepts_them(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let llm = MockServer::start(Arc::new(|_, _| {
        let mut answer =
            chat_answer("女士您好，生日快乐！感谢您一直以来的信任，愿您新的一岁心情愉快。");
        answer["usage"] =
            serde_json::json!({"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150});
        (200, vec![], answer)
    }))
    .await;
    let addr = free_addr();
    let vars = [
        ("LLM_API_URL", llm.url.as_str()),
        ("LLM_API_KEY", "sk-test"),
        ("REVISIT__WORKER__METRICS_ADDR", addr.as_str()),
    ];
    let mut worker = worker_daemon(&env, &[], &vars);
    eventually(Duration::from_secs(30), "the worker's probes", || {
        let url = format!("http://{addr}/health/ready");
        async move {
            let r = reqwest::get(url).await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
    let before = scrape(&addr).await;
    assert_eq!(
        sample(
            &before,
            "revisit_jobs_completed_total{kind=\"greeting.generate\"}"
        ),
        0.0
    );

    let birthday = birthday_in_days(2);
    let mut customers: Vec<serde_json::Value> = serde_json::from_str(&customers_json(&[
        ("BJ-HA-001-C1", "张丽", &birthday, "13800000001"),
        ("BJ-HA-001-C2", "王芳", &birthday, "13800000002"),
        ("BJ-HA-001-C3", "李娜", &birthday, "13800000003"),
        ("BJ-HA-001-C4", "赵敏", "1990-13-45", "13800000004"),
    ]))
    .unwrap();
    customers[3]["person"]["birthday"] = "不是日期".into();
    let tree = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &serde_json::to_string(&customers).unwrap(),
        ),
    ]);
    let (code, out, err) = run_cli(
        &env,
        args(&["import", tree.path().to_str().unwrap(), "--wait"]),
        None,
    )
    .await;
    assert_eq!(code, Some(3), "one record is rejected\n{out}\n{err}");
    let (code, out, err) = run_cli(
        &env,
        args(&["run-reminders", "--institution", "BJ-HA-001", "--wait"]),
        None,
    )
    .await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (code, out, err) = run_cli(
        &env,
        args(&["jobs", "pause", "report.daily", "--reason", "测试"]),
        None,
    )
    .await;
    assert_eq!(code, Some(0), "{out}\n{err}");

    let after = scrape(&addr).await;
    worker.kill().await.unwrap();
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        moved("revisit_jobs_completed_total{kind=\"greeting.generate\"}"),
        3.0,
        "{after}"
    );
    assert_eq!(
        moved("revisit_sends_total{channel=\"console\",outcome=\"sent\"}"),
        3.0
    );
    assert_eq!(moved("revisit_llm_calls_total{outcome=\"ok\"}"), 3.0);
    assert_eq!(moved("revisit_llm_tokens_total{kind=\"prompt\"}"), 360.0);
    assert_eq!(
        moved("revisit_import_rows_total{outcome=\"rejected\"}"),
        1.0
    );
    assert!(moved("revisit_import_rows_total{outcome=\"inserted\"}") >= 4.0);
    assert_eq!(
        moved("revisit_job_duration_seconds_count{kind=\"message.send\"}"),
        3.0
    );
    assert_eq!(
        sample(
            &after,
            "revisit_queue_jobs{queue=\"greeting.generate.v1\",state=\"waiting\"}"
        ),
        0.0
    );
    assert_eq!(
        sample(&after, "revisit_queue_paused{queue=\"report.daily.v1\"}"),
        1.0
    );
    // No customer, phone or name in any label or value.
    for private in ["13800000001", "张丽", "BJ-HA-001-C1"] {
        assert!(!after.contains(private), "{private} in the metrics");
    }
    promtool_accepts(&after);
    queried_metrics_exist(&after);

    // The API's /metrics: the database's figures, without a token.
    let api_addr = free_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(revisit::api::serve(
        env.app.clone(),
        api_addr.parse().unwrap(),
        async move {
            let _ = stopped.await;
        },
    ));
    let text = eventually(Duration::from_secs(10), "the API's /metrics", || {
        let url = format!("http://{api_addr}/metrics");
        async move { reqwest::get(url).await.ok()?.text().await.ok() }
    })
    .await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert_eq!(
        sample(&text, "revisit_queue_paused{queue=\"report.daily.v1\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "revisit_queue_jobs{queue=\"message.send.v1\",state=\"dead\"}"
        ),
        0.0
    );
    assert!(text.contains("revisit_queue_oldest_waiting_seconds{queue=\"import.file.v1\"} 0"));
    promtool_accepts(&text);
}
