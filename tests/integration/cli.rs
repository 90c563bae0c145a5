//! The CLI as a user runs it: the demo on an empty database, and a refused `init --force`.

use std::process::Stdio;

use revisit::config::Backend;

use crate::harness::*;

crate::on_both_backends!(
    demo_on_an_empty_database_prints_greetings,
    init_force_without_confirmation_refuses_and_keeps_the_data,
    import_wait_shows_progress_within_a_large_file_and_a_relative_path_works,
    import_wait_exits_3_when_a_file_or_a_record_is_rejected,
    run_reminders_wait_exits_3_when_a_revisit_fails,
    a_command_that_did_not_do_what_was_asked_exits_non_zero_in_chinese,
    check_claims_only_what_it_verified,
);

/// `revisit check` marks ✅ only what it verified: an LLM that answers (one that does not is
/// ❌), real sending only once switched on, a projection only while a worker keeps it synced.
/// When nobody was due, run-reminders says so rather than "all revisited".
async fn check_claims_only_what_it_verified(backend: Backend) {
    let llm = MockServer::start(std::sync::Arc::new(|_, _| {
        (200, vec![], serde_json::json!({"data": []}))
    }))
    .await;
    let env = TestEnv::fresh(backend, &[]).await;
    let line = |stdout: &str, name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(&format!(" {name}:")))
            .unwrap_or_else(|| panic!("no {name} line: {stdout}"))
            .to_owned()
    };
    let answering = [
        ("LLM_API_URL", llm.url.as_str()),
        ("LLM_API_KEY", "sk-test"),
    ];
    let (_, stdout, _) = run_cli_with(&env, &answering, args(&["check"]), None).await;
    assert!(line(&stdout, "LLM").starts_with("✅"), "{stdout}");
    assert!(llm.count() >= 1, "the LLM was asked");
    assert!(line(&stdout, "正式发送").contains("未开启"), "{stdout}");
    let vectors = line(&stdout, "Qdrant");
    assert!(
        !vectors.starts_with("✅") && vectors.contains("没有运行中的 worker"),
        "{vectors}"
    );
    let dead = free_addr();
    let unreachable = [
        (
            "LLM_API_URL",
            &*format!("http://{dead}/v1/chat/completions"),
        ),
        ("LLM_API_KEY", "sk-test"),
    ];
    let (code, stdout, _) = run_cli_with(&env, &unreachable, args(&["check"]), None).await;
    assert!(line(&stdout, "LLM").starts_with("❌"), "{stdout}");
    assert_eq!(code, Some(1), "{stdout}");

    // Nobody has a birthday in the window: said so, not "all revisited".
    let tree = write_tree(&[("common/institutions.json", INSTITUTIONS)]);
    import_tree(&env, tree.path()).await;
    let mut worker = worker_daemon(&env, &[], &[]);
    let (code, stdout, stderr) = run_cli(
        &env,
        args(&["run-reminders", "--test-mode", "--wait"]),
        None,
    )
    .await;
    worker.kill().await.unwrap();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("天内没有客户过生日"), "{stdout}");
    assert!(!stdout.contains("都已回访过"), "{stdout}");
}

/// Each command that could not do what it was asked says so in Chinese and exits non-zero:
/// 3 when it did part of it (approvals naming ids not waiting), 1 when it did nothing.
async fn a_command_that_did_not_do_what_was_asked_exits_non_zero_in_chinese(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let cases: [(&[&str], i32, &str); 7] = [
        (&["approvals", "approve", "999999"], 3, "不在待审批中"),
        (&["approvals", "reject", "999998"], 3, "不在待审批中"),
        (&["jobs", "retry", "01NOSUCHJOB"], 1, "没有匹配的失败任务"),
        (
            &["jobs", "cancel", "01NOSUCHJOB"],
            1,
            "只有等待中的任务可以取消",
        ),
        (&["tasks", "done", "999999"], 1, "不是待处理状态"),
        (&["tokens", "revoke", "999999"], 1, "已被吊销"),
        (&["consent", "optout", "123"], 1, "不是手机号"),
    ];
    for (command, want, said) in cases {
        let (code, stdout, stderr) = run_cli(&env, args(command), None).await;
        assert_eq!(code, Some(want), "{command:?}:\n{stdout}\n{stderr}");
        assert!(stderr.contains(said), "{command:?}: {stderr}");
    }
}

/// Security review, finding 3: `init` with a URL that names no database printed the password.
#[test]
fn an_error_never_prints_a_credential() {
    let env = vec![(
        "DATABASE_URL".to_owned(),
        "postgres://postgres:S3cretPw@127.0.0.1:5432".to_owned(),
    )];
    let out = revisit(&env, &["init"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("postgres:[redacted]@127.0.0.1") && !stderr.contains("S3cretPw"),
        "{stderr}"
    );
}

fn revisit(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(with_vectors_dir(env.to_vec()))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("run revisit")
}

async fn demo_on_an_empty_database_prints_greetings(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = vec![("DATABASE_URL".to_owned(), db.url.clone())];
    // `today` is whatever day the test runs: the sample data has birthdays in every week.
    let out = tokio::task::spawn_blocking(move || revisit(&env, &["demo"]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("演示完成"), "{stdout}");
    assert!(
        stdout.contains("测试·未发送"),
        "no greeting printed:\n{stdout}"
    );
    assert!(stdout.contains("生日快乐"), "{stdout}");
    // Each greeting is printed once: one line per revisit the demo reports.
    let greeted: usize = stdout
        .split("演示完成：")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the summary names how many revisits");
    let shown = stdout.matches("生日快乐").count();
    assert_eq!(shown, greeted, "{stdout}");
    // Phones are masked in what the demo prints.
    assert!(stdout.contains("****"), "{stdout}");
    // Every feature answers after the demo: similar customers (vectors filled), the relation
    // graph with the sample referral, and a low score on a check-in opening a task.
    assert!(stdout.contains("相似度"), "{stdout}");
    assert!(
        stdout.contains("由其推荐 客户 BJ-HA-001-C0001")
            && stdout.contains("推荐了 客户 BJ-HA-001-C0005"),
        "{stdout}"
    );
    // Relations say what happened (做过 a project), and nothing that says nothing.
    assert!(
        stdout.contains("做过 项目") && !stdout.contains("是 本人"),
        "{stdout}"
    );
    assert!(
        stdout.contains("术后回访") && stdout.contains("5分为非常满意"),
        "{stdout}"
    );
    assert!(
        stdout.contains("已为该机构员工生成一条低分跟进待办"),
        "{stdout}"
    );
    let opened = revisit::store::open(&settings(&db.url, &[])).await.unwrap();
    let count = |sql: &'static str| {
        let pool = opened.pool.clone();
        async move {
            match pool {
                revisit::store::DbPool::Postgres(p) => sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&p)
                    .await
                    .unwrap(),
                revisit::store::DbPool::Sqlite(p) => sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&p)
                    .await
                    .unwrap(),
            }
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM staff_tasks WHERE status = 'open'").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM customers WHERE lunar_birthday IS NOT NULL").await,
        1,
        "the sample data keeps a lunar birthday"
    );
}

async fn init_force_without_confirmation_refuses_and_keeps_the_data(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let dir = write_tree(&[(
        "common/institutions.json",
        r#"[{"institution_code":"K-1","name":"保留"}]"#,
    )]);
    import_tree(&env, dir.path()).await;
    let vars = vec![("DATABASE_URL".to_owned(), env.db.url.clone())];
    let out = tokio::task::spawn_blocking(move || revisit(&vars, &["init", "--force"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("已取消"), "{stderr}");
    assert_eq!(
        env.count("SELECT count(*) FROM institutions").await,
        1,
        "nothing was dropped"
    );
}

/// Output piped into a reader that has gone (`revisit … | head`) ends the command quietly, as
/// SIGPIPE ends other tools (status 141), never with a panic's message.
#[test]
fn a_reader_that_went_away_ends_the_command_quietly() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(["lint", "张女士，祝您生日快乐！"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run revisit");
    // The reader is gone before the first line is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Help and argument errors are Chinese: clap's own English never reaches the reader.
#[test]
fn help_and_argument_errors_speak_chinese() {
    let out = revisit(&[], &["jobs", "list", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("用法：") && help.contains("选项："), "{help}");
    assert!(
        help.contains("<机构编码>") || help.contains("--limit <条数>"),
        "{help}"
    );
    for (args, said) in [
        (&["nope"][..], "没有命令 \"nope\""),
        (&["jobs", "list", "--bogus"][..], "不认识的参数 --bogus"),
        (
            &["run-reminders", "--kind", "x"][..],
            "可用：birthday、checkin、cycle、winback",
        ),
    ] {
        let out = revisit(&[], args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(said), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("error:") && !stderr.contains("Usage"),
            "{stderr}"
        );
    }
}

#[test]
fn lint_shows_the_verdict_and_fails_on_banned_text() {
    let out = revisit(&[], &["lint", "生日快乐！全城最好的机构，保证效果"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("第九条") && stdout.contains("第十六条"),
        "{stdout}"
    );
    // The term in its clause, once; the verdict in Chinese.
    assert!(stdout.contains("全城【最】好的机构"), "{stdout}");
    assert_eq!(stdout.matches("【最】").count(), 1, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("未通过合规检查") && !stderr.contains("error"),
        "{stderr}"
    );
    let out = revisit(
        &[],
        &["lint", "张女士，祝您生日快乐，新的一岁做最好的自己！"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = revisit(
        &[],
        &["lint", "张女士，祝您生日快乐，最近天气转凉，注意保湿。"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let vars = vec![(
        "REVISIT__COMPLIANCE__ALLOW_PRICES".to_owned(),
        "[\"BJ-HA-001\"]".to_owned(),
    )];
    let priced = ["lint", "生日当月项目九折", "--institution"];
    assert!(
        !revisit(&[], &[&priced[..], &["BJ-HA-001"]].concat())
            .status
            .success()
    );
    let out = revisit(&vars, &[&priced[..], &["BJ-HA-001"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn a_bad_setting_names_its_key() {
    let vars = vec![("BIRTHDAY_REMINDER_DAYS_AHEAD".to_owned(), "400".to_owned())];
    let out = tokio::task::spawn_blocking(move || revisit(&vars, &["check"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reminders.days_ahead"), "{stderr}");
    assert!(stderr.contains("0 到 60"), "in Chinese: {stderr}");

    // A missing file says so once; a bad TOML names its line and column; a wrong type names
    // its key. All in Chinese.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[reminders]\ndays_ahead = 3\nchannel = \n").unwrap();
    let typed = dir.path().join("typed.toml");
    std::fs::write(&typed, "[reminders]\ndays_ahead = \"x\"\n").unwrap();
    let (missing, bad, typed) = (
        "/nope/revisit.toml".to_owned(),
        bad.display().to_string(),
        typed.display().to_string(),
    );
    let outs = tokio::task::spawn_blocking(move || {
        [missing, bad, typed].map(|f| revisit(&[], &["--config", &f, "check"]))
    })
    .await
    .unwrap();
    let said: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert_eq!(said[0].matches("文件不存在").count(), 1, "{}", said[0]);
    assert!(!said[0].contains("No such file"), "{}", said[0]);
    assert!(said[1].contains("第 3 行第 11 列"), "{}", said[1]);
    assert!(
        said[2].contains("reminders.days_ahead") && said[2].contains("应为整数"),
        "{}",
        said[2]
    );
    assert!(outs.iter().all(|o| o.status.code() == Some(1)));

    // A database that does not exist: its cause once, and what to do.
    let url = format!("{}/revisit_no_such_database", server_url());
    let vars = vec![("DATABASE_URL".to_owned(), url)];
    let out = tokio::task::spawn_blocking(move || revisit(&vars, &["jobs", "list"]))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.matches("不存在").count(), 1, "{stderr}");
    assert!(
        stderr.contains("revisit init") && !stderr.contains("error"),
        "{stderr}"
    );
}

async fn import_wait_shows_progress_within_a_large_file_and_a_relative_path_works(
    backend: Backend,
) {
    let env = TestEnv::new(backend, &[]).await;
    let n = 40_000;
    let customers: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"customer_code":"BJ-HA-001-C{i:06}","person":{{"name":"客户","birthday":"1990-01-01","phone":"136{i:08}"}}}}"#
            )
        })
        .collect();
    let dir = write_tree(&[
        ("data/common/institutions.json", INSTITUTIONS),
        (
            "data/BJ-HA-001/customers.json",
            &format!("[{}]", customers.join(",")),
        ),
    ]);
    let mut worker = worker_daemon(&env, &["import.file"], &[]);
    // A relative path, from a folder the worker does not run in.
    let (code, stdout, stderr) = run_cli(
        &env,
        args(&["import", "data", "--wait"]),
        Some(dir.path().to_path_buf()),
    )
    .await;
    worker.kill().await.unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("customers.json") && stderr.contains(&format!("/{n} 条")),
        "progress within the file: {stderr}"
    );
    assert!(stdout.contains(&format!("共 {n} 条，新增 {n}")), "{stdout}");
    assert_eq!(env.count("SELECT count(*) FROM customers").await, n as i64);
}

/// `revisit import --wait` as a script runs it: 0 when everything landed, 3 (documented in the
/// README) when a file was refused whole (cut short, not an array, not UTF-8) or a record was
/// rejected, whatever else landed.
async fn import_wait_exits_3_when_a_file_or_a_record_is_rejected(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let good =
        r#"[{"customer_code":"BJ-HA-001-C1","person":{"name":"张丽","phone":"13800000001"}}]"#;
    let bad_record = r#"[{"customer_code":"BJ-HA-001-C2","person":{"name":"王芳","phone":"13800000002"}},
        {"customer_code":"BJ-HA-001-C3","person":{"name":"李娜","birthday":"1990-02-30","phone":"13800000003"}}]"#;
    let gbk: Vec<u8> = [
        b"[{\"customer_code\":\"BJ-HA-001-C4\",\"person\":{\"name\":\"".as_slice(),
        &[0xD5, 0xC5, 0xC8, 0xFD],
        b"\",\"phone\":\"13800000004\"}}]",
    ]
    .concat();
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("good", good.as_bytes().to_vec(), 0),
        ("a rejected record", bad_record.as_bytes().to_vec(), 3),
        (
            "cut short",
            br#"[{"customer_code":"BJ-HA-001-C5","person":{"#.to_vec(),
            3,
        ),
        (
            "an object",
            br#"{"customer_code":"BJ-HA-001-C6"}"#.to_vec(),
            3,
        ),
        ("GBK", gbk, 3),
    ];
    let mut worker = worker_daemon(&env, &["import.file"], &[]);
    let institutions = write_tree(&[("common/institutions.json", INSTITUTIONS)]);
    import_tree(&env, institutions.path()).await;
    for (what, bytes, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("BJ-HA-001").join("customers.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, bytes).unwrap();
        let cmd = vec!["import".into(), dir.path().into(), "--wait".into()];
        let (code, stdout, stderr) = run_cli(&env, cmd, None).await;
        assert_eq!(code, Some(want), "{what}:\n{stdout}\n{stderr}");
        if want == 3 {
            assert!(stderr.contains("未全部完成"), "{what}: {stderr}");
        }
        // What staff read of a file refused whole is Chinese, saying what to do.
        let said = match what {
            "cut short" => Some("文件不完整，请重新导出"),
            "an object" => Some("应是一个记录数组"),
            "GBK" => Some("另存为 UTF-8"),
            _ => None,
        };
        if let Some(said) = said {
            let all = format!("{stdout}{stderr}");
            assert!(all.contains(said), "{what}: {all}");
            assert!(!all.contains("the file"), "{what}: English in {all}");
            // A file refused whole is the file's error, not record 0's.
            assert!(!all.contains("(file)"), "{what}: {all}");
        }
    }
    worker.kill().await.unwrap();
    // The good record and the valid one beside the rejected record landed.
    assert_eq!(env.count("SELECT count(*) FROM customers").await, 2);
}

/// `revisit run-reminders --wait` exits 3 when a revisit failed (here a gateway that refuses
/// every message), so that a script sees it.
async fn run_reminders_wait_exits_3_when_a_revisit_fails(backend: Backend) {
    let hook = MockServer::start(std::sync::Arc::new(|_, _| {
        (400, vec![], serde_json::json!({"error": "refused"}))
    }))
    .await;
    let env = TestEnv::new(backend, &[]).await;
    let birthday = birthday_in_days(2);
    let tree = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[("BJ-HA-001-C1", "张丽", &birthday, "13800000001")]),
        ),
    ]);
    import_tree(&env, tree.path()).await;
    let channel = [
        ("REVISIT__REMINDERS__CHANNEL", "webhook"),
        ("REVISIT__WEBHOOK__URL", hook.url.as_str()),
    ];
    let mut worker = worker_daemon(&env, &[], &channel);
    let (code, stdout, stderr) = run_cli(
        &env,
        args(&["run-reminders", "--institution", "BJ-HA-001", "--wait"]),
        None,
    )
    .await;
    worker.kill().await.unwrap();
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("1 条回访失败"), "{stderr}");
    assert!(hook.count() >= 1, "the gateway was asked");
}
