//! The CLI as a user runs it: the demo on an empty database, and a refused `init --force`.

use std::process::Stdio;

use crate::harness::*;

fn revisit(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(env.iter().cloned())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("run revisit")
}

#[tokio::test]
async fn demo_on_an_empty_database_prints_greetings() {
    let db = TestDb::new().await;
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
    // Phones are masked in what the demo prints.
    assert!(stdout.contains("****"), "{stdout}");
}

#[tokio::test]
async fn init_force_without_confirmation_refuses_and_keeps_the_data() {
    let env = TestEnv::new(&[]).await;
    sqlx::query("INSERT INTO institutions (code, name, content_hash) VALUES ('K-1', '保留', 'x')")
        .execute(env.pool())
        .await
        .unwrap();
    let vars = vec![("DATABASE_URL".to_owned(), env.db.url.clone())];
    let out = tokio::task::spawn_blocking(move || revisit(&vars, &["init", "--force"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM institutions")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(n, 1, "nothing was dropped");
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
}
