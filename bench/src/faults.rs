//! `revisit-bench faults`: greetings delivered through workers that keep being killed.
//!
//! 1. Starts a PostgreSQL cluster of its own (`initdb` on a spare port, under a temporary
//!    folder, run as the `postgres` user when started as root), so nothing else is disturbed.
//! 2. Starts a webhook receiver on 127.0.0.1 that counts the POSTs of every `Idempotency-Key`
//!    (it answers after `--receiver-delay-ms`, so that kills land mid-request too).
//! 3. Imports `--revisits` customers whose birthdays fall in the next days and runs a real
//!    (not test-mode) birthday scan, so each gets a revisit, a greeting and a send.
//! 4. Runs `--workers` `revisit worker` processes (this binary as `revisit`, see `main`), SIGKILLs a random one every 1–2 s and
//!    starts it again, and restarts PostgreSQL (immediate mode, as a crash would) once.
//! 5. When every revisit is settled, reports: revisits, delivered once, delivered twice, lost
//!    (never delivered and not flagged) and flagged "delivery uncertain" (a person must check;
//!    split by whether the receiver did get the message).

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{Router, extract::State, http::HeaderMap};
use chrono::Datelike;
use revisit_jobs::{ImportFile, Job, ReminderScan};

use crate::cli::BenchFaultsArgs;
use revisit::{
    app::App,
    config::Settings,
    queue::worker::InProcessPool,
    store::{self, DbPool},
};

const INSTITUTION: &str = "FAULT-001";

/// A PostgreSQL cluster in a temporary folder, stopped and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn pg_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context(
            "no PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)",
        )?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

fn spare_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Cluster {
    fn start() -> anyhow::Result<Self> {
        let bin = pg_bin()?;
        let dir = std::env::temp_dir().join(format!(
            "revisit-faults-{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        ));
        std::fs::create_dir_all(&dir)?;
        // initdb refuses to run as root: run the cluster as the postgres user then.
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()?
                .success();
            anyhow::ensure!(ok, "cannot hand {} to the postgres user", dir.display());
        }
        let cluster = Self {
            bin,
            dir,
            port: spare_port()?,
            as_postgres,
        };
        cluster.run(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-sync", "-D"],
            true,
        )?;
        cluster.pg_ctl(&["start", "-w", "-t", "60"])?;
        Ok(cluster)
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str], with_dir: bool) -> anyhow::Result<()> {
        let mut c = self.command(tool);
        c.args(args);
        if with_dir {
            c.arg(self.dir.join("data"));
        }
        let out = c.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
        anyhow::ensure!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn pg_ctl(&self, action: &[&str]) -> anyhow::Result<()> {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data");
        let log = self.dir.join("postgres.log");
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(&opts)
            .args(action);
        let out = c.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
        anyhow::ensure!(
            out.status.success(),
            "pg_ctl {action:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/revisit_faults", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// POSTs received per idempotency key.
type Deliveries = Arc<Mutex<HashMap<String, u32>>>;

#[derive(Clone)]
struct Receiver {
    deliveries: Deliveries,
    delay: Duration,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap) -> &'static str {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    // Counted on arrival: a worker killed while it waits for the answer has still delivered.
    *r.deliveries
        .lock()
        .expect("not poisoned")
        .entry(key)
        .or_default() += 1;
    tokio::time::sleep(r.delay).await;
    "ok"
}

/// `n` customers of institution `code` (named `name`) whose birthdays fall within the next
/// `days_ahead` days, in the import layout under `dir`.
pub(crate) fn write_customers(
    dir: &Path,
    code: &str,
    name: &str,
    n: usize,
    days_ahead: u32,
) -> anyhow::Result<()> {
    let today = chrono::Utc::now().date_naive();
    std::fs::create_dir_all(dir.join("common"))?;
    std::fs::create_dir_all(dir.join(code))?;
    std::fs::write(
        dir.join("common/institutions.json"),
        format!(r#"[{{"institution_code":"{code}","name":"{name}"}}]"#),
    )?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(
        dir.join(code).join("customers.json"),
    )?);
    w.write_all(b"[")?;
    for i in 0..n {
        // Today + 1..=days_ahead, in 1990 (29 February never comes up: 1990 is not a leap year).
        let day = today + chrono::Days::new(1 + (i as u64 % days_ahead.max(1) as u64));
        let birthday = chrono::NaiveDate::from_ymd_opt(1990, day.month(), day.day())
            .unwrap_or_else(|| chrono::NaiveDate::from_ymd_opt(1990, 2, 28).expect("date"));
        let sep = if i + 1 < n { "," } else { "" };
        write!(
            w,
            r#"{{"customer_code":"{code}-C{i:06}","person":{{"name":"客户{i}","gender":"女","birthday":"{birthday}","phone":"137{i:08}"}}}}{sep}"#
        )?;
    }
    w.write_all(b"]")?;
    w.flush()?;
    Ok(())
}

struct Fleet {
    exe: PathBuf,
    env: Vec<(String, String)>,
    children: Vec<Child>,
}

impl Fleet {
    fn spawn(&self) -> anyhow::Result<Child> {
        // This binary runs `revisit worker` itself (see `main`): the same library code as
        // the `revisit` binary, and always the build under test.
        Ok(Command::new(&self.exe)
            .args([
                crate::AS_REVISIT,
                "worker",
                "--no-cron",
                "--queue",
                "reminder.scan",
                "--queue",
                "greeting.generate",
                "--queue",
                "message.send",
            ])
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub async fn run(settings: Settings, args: BenchFaultsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.workers >= 2, "--workers must be at least 2");
    println!(
        "故障演练 fault benchmark: {} revisits, {} workers, one SIGKILLed every 1–2 s, PostgreSQL restarted once",
        args.revisits, args.workers
    );
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let url = cluster.url();
    println!("   PostgreSQL of its own on port {}", cluster.port);

    let deliveries: Deliveries = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", listener.local_addr()?);
    let receiver = Router::new().fallback(receive).with_state(Receiver {
        deliveries: deliveries.clone(),
        delay: Duration::from_millis(args.receiver_delay_ms),
    });
    let server = tokio::spawn(async move { axum::serve(listener, receiver).await });

    // Set up the data with an in-process import worker.
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), url.clone()),
        // The workers' embedded vector folder goes with the cluster, not into this folder.
        (
            "REVISIT__VECTORS__DIR".into(),
            cluster.dir.join("vectors").display().to_string(),
        ),
        ("REVISIT__REMINDERS__CHANNEL".into(), "webhook".into()),
        ("REVISIT__WEBHOOK__URL".into(), hook_url.clone()),
        ("REVISIT__WEBHOOK__TIMEOUT_SECS".into(), "2".into()),
        ("REVISIT__WORKER__HEARTBEAT_SECS".into(), "1".into()),
        ("REVISIT__WORKER__MISSED_HEARTBEATS".into(), "3".into()),
        ("REVISIT__WORKER__POLL_INTERVAL_MS".into(), "100".into()),
        ("REVISIT__WORKER__SHUTDOWN_TIMEOUT_SECS".into(), "2".into()),
        (
            "REVISIT__JOBS__MESSAGE_SEND__MAX_ATTEMPTS".into(),
            "25".into(),
        ),
        (
            "REVISIT__JOBS__MESSAGE_SEND__BASE_DELAY_SECS".into(),
            "1".into(),
        ),
        (
            "REVISIT__JOBS__MESSAGE_SEND__MAX_DELAY_SECS".into(),
            "5".into(),
        ),
        (
            "REVISIT__JOBS__GREETING_GENERATE__MAX_ATTEMPTS".into(),
            "25".into(),
        ),
        (
            "REVISIT__JOBS__GREETING_GENERATE__BASE_DELAY_SECS".into(),
            "1".into(),
        ),
        (
            "REVISIT__JOBS__GREETING_GENERATE__MAX_DELAY_SECS".into(),
            "5".into(),
        ),
        (
            "REVISIT__JOBS__REMINDER_SCAN__BASE_DELAY_SECS".into(),
            "1".into(),
        ),
        ("REVISIT__CRON__ENABLED".into(), "false".into()),
        // The harness runs at any hour: no quiet hours.
        ("REVISIT__REMINDERS__SEND_WINDOW".into(), "".into()),
        ("LLM_API_KEY".into(), String::new()),
        ("RUST_LOG".into(), "error".into()),
    ];
    let days = settings.reminders.days_ahead.clamp(1, 7);
    let local = Settings::load_from(None, &env)?;
    store::create_if_missing(&url).await?;
    let app = App::new(store::open(&local).await?, local)?;
    let data = cluster.dir.join("import");
    let n = args.revisits;
    let d = data.clone();
    tokio::task::spawn_blocking(move || {
        write_customers(&d, INSTITUTION, "故障演练门诊部", n, days)
    })
    .await??;
    let importer = InProcessPool::start(app.clone(), vec![ImportFile::QUEUE]);
    let (batch, files) = revisit::import::enqueue_plan(&app, &data).await?;
    revisit::commands::wait::import_batch(&app, &batch, files, Duration::from_secs(300)).await?;
    importer.stop().await?;
    // The bench's own scratch database, whose peer plays the channel: real sends measured.
    app.store.set_sending(true, "bench").await?;
    store::enqueue(
        &*app.store,
        &app.settings,
        &ReminderScan {
            institution: Some(INSTITUTION.into()),
            test_mode: false,
            today: None,
        },
        None,
    )
    .await?;

    env.push(("HOME".into(), std::env::var("HOME").unwrap_or_default()));
    let mut fleet = Fleet {
        exe: std::env::current_exe()?,
        env,
        children: Vec::new(),
    };
    for _ in 0..args.workers {
        let child = fleet.spawn()?;
        fleet.children.push(child);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut kills = 0;
    let mut restarted_pg = false;
    let mut next_kill = Instant::now() + Duration::from_millis(1000 + fastrand::u64(0..1000));
    let pool = match &app.pool {
        DbPool::Postgres(p) => p.clone(),
        DbPool::Sqlite(_) => unreachable!("the benchmark's cluster is PostgreSQL"),
    };
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if Instant::now() >= next_kill {
            let i = fastrand::usize(0..fleet.children.len());
            let _ = fleet.children[i].kill();
            let _ = fleet.children[i].wait();
            fleet.children[i] = fleet.spawn()?;
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(1000 + fastrand::u64(0..1000));
        }
        if !restarted_pg && started.elapsed() > Duration::from_secs(args.restart_after_secs) {
            let c = &cluster;
            tokio::task::block_in_place(|| {
                c.pg_ctl(&["restart", "-m", "immediate", "-w", "-t", "60"])
            })?;
            restarted_pg = true;
            println!(
                "   PostgreSQL restarted (immediate) after {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        let counts: Result<(i64, i64), sqlx::Error> = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('pending', 'generated', 'sending')) FROM revisits",
        )
        .fetch_one(&pool)
        .await;
        let Ok((all, open)) = counts else {
            continue; // the database is restarting
        };
        if last_report.elapsed() > Duration::from_secs(5) {
            println!(
                "   {:.0} s: {} of {all} revisits settled, {kills} workers killed",
                started.elapsed().as_secs_f64(),
                all - open
            );
            last_report = Instant::now();
        }
        if all as usize >= args.revisits && open == 0 && restarted_pg {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not settled after {} s: {open} of {all} revisits still open",
            args.timeout_secs
        );
    }
    let elapsed = started.elapsed();
    drop(fleet);
    // Any request still in flight has arrived by now.
    tokio::time::sleep(Duration::from_millis(args.receiver_delay_ms + 200)).await;

    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT send_key, status, delivery_uncertain FROM revisits")
            .fetch_all(&pool)
            .await?;
    let got = deliveries.lock().expect("not poisoned").clone();
    let mut once = 0;
    let mut twice = 0;
    let mut lost = 0;
    let mut uncertain_delivered = 0;
    let mut uncertain_not = 0;
    let mut other_failed = 0;
    for (key, status, uncertain) in &rows {
        let posts = got.get(key).copied().unwrap_or(0);
        match posts {
            0 if *uncertain => uncertain_not += 1,
            0 => lost += 1,
            1 => once += 1,
            _ => twice += 1,
        }
        if posts > 0 && *uncertain {
            uncertain_delivered += 1;
        }
        if status == "failed" && !uncertain {
            other_failed += 1;
        }
    }
    server.abort();
    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!("| revisits | {} |", rows.len());
    println!("| delivered once | {once} |");
    println!("| delivered twice or more | {twice} |");
    println!("| lost (never delivered, not flagged) | {lost} |");
    println!(
        "| flagged \"delivery uncertain\" | {} ({uncertain_delivered} had reached the receiver, {uncertain_not} had not) |",
        uncertain_delivered + uncertain_not
    );
    println!("| failed for another reason | {other_failed} |");
    println!("| workers SIGKILLed and restarted | {kills} |");
    println!("| PostgreSQL restarts | 1 |");
    println!("| time to settle | {:.1} s |", elapsed.as_secs_f64());
    drop(cluster);
    anyhow::ensure!(
        twice == 0 && lost == 0,
        "{twice} delivered twice, {lost} lost"
    );
    Ok(())
}
