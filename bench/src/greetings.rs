//! `revisit bench greetings`: the greeting pipeline's speed against an LLM that takes a fixed
//! time to answer, on the configured database.
//!
//! 1. Starts an OpenAI-compatible chat server on 127.0.0.1 that answers each request after
//!    `--llm-delay-ms` (counting how many requests it holds at once), and a webhook receiver.
//! 2. Imports `--revisits` customers with birthdays in the next days, through the real queue.
//! 3. Enqueues a real birthday scan and runs the workers (scan, greeting, send) with
//!    `--concurrency` greetings and LLM calls at a time; times the scan's enqueue to the last
//!    message delivered. Every greeting goes through the compliance check before it is saved.
//!
//! The bound is `concurrency / delay`: no pipeline can go faster while each greeting waits that
//! long for its LLM. The figure to read is the share of that bound reached.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, routing::post};
use revisit_jobs::{GreetingGenerate, ImportFile, Job, MessageSend, ReminderScan};
use serde_json::{Value, json};

use crate::cli::BenchGreetingsArgs;
use revisit::{
    app::App,
    config::{PolicyOverride, Secret, Settings},
    queue::worker::InProcessPool,
    store,
};

const INSTITUTION: &str = "BENCH-GRT-001";

/// The LLM peer: in flight now, the most at once, answered.
#[derive(Default)]
struct Peer {
    delay: Duration,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    answered: AtomicUsize,
    /// When the first request came.
    first: std::sync::Mutex<Option<Instant>>,
}

async fn chat(State(peer): State<Arc<Peer>>) -> Json<Value> {
    peer.first
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert_with(Instant::now);
    let now = peer.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    peer.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(peer.delay).await;
    peer.in_flight.fetch_sub(1, Ordering::SeqCst);
    let n = peer.answered.fetch_add(1, Ordering::SeqCst);
    let text = match n % 3 {
        0 => "女士您好，生日快乐！感谢您一直以来的信任与陪伴，愿您新的一岁心情愉快。",
        1 => "女士您好，祝您生日快乐！愿您在新的一岁里平安顺遂、笑口常开。",
        _ => "女士您好，生日快乐！谢谢您一路的陪伴，祝您天天好心情。",
    };
    Json(json!({
        "id": format!("bench-{n}"),
        "object": "chat.completion",
        "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}]
    }))
}

async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{addr}"))
}

pub async fn run(mut settings: Settings, args: BenchGreetingsArgs) -> anyhow::Result<()> {
    let peer = Arc::new(Peer {
        delay: Duration::from_millis(args.llm_delay_ms),
        ..Default::default()
    });
    let llm = serve(
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(peer.clone()),
    )
    .await?;
    let hook = serve(Router::new().route("/hook", post(|| async { "ok" }))).await?;

    settings.llm.api_url = format!("{llm}/v1/chat/completions");
    settings.llm.api_key = Secret::new("bench");
    settings.llm.max_concurrent_calls = args.concurrency;
    settings.reminders.channel = "webhook".into();
    settings.webhook.url = Secret::new(format!("{hook}/hook"));
    settings.reminders.send_window = String::new();
    settings.consent.approval_institutions.clear();
    settings.cron.enabled = false;
    // Every handler holds a connection for its statements: a pool smaller than the work in
    // flight makes handlers wait for one (16 by default measured 59 % of the bound on
    // PostgreSQL, a pool sized to the concurrency 70 %).
    let jobs = args.job_concurrency.unwrap_or(2 * args.concurrency);
    let sqlite = revisit::config::Backend::of_url(&settings.database.url)
        == Some(revisit::config::Backend::Sqlite);
    settings.database.max_connections = match args.pool {
        Some(n) => n,
        // Measured: 8 connections 90-93 %, 16 89-91 %, 32 86 %, 136 80-82 % of the bound.
        None if sqlite => 8,
        None => settings.database.max_connections.max((2 * jobs + 8) as u32),
    };
    for kind in ["greeting.generate", "message.send"] {
        settings.jobs.insert(
            kind.to_owned(),
            PolicyOverride {
                concurrency: Some(jobs),
                ..Default::default()
            },
        );
    }
    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    let backend = app.store.backend().name();
    if app.store.institution(INSTITUTION).await?.is_some() {
        anyhow::bail!(
            "{INSTITUTION} is in this database already: its customers were greeted by an earlier run. Use a fresh database"
        );
    }
    println!(
        "话术流水线基准 greeting pipeline on {backend}: {} revisits, LLM answers after {} ms, {} calls at a time, {jobs} greeting and {jobs} send jobs at a time, {} database connections",
        args.revisits, args.llm_delay_ms, args.concurrency, app.settings.database.max_connections
    );

    let dir = crate::import::tempfile_dir()?;
    let (d, n) = (dir.clone(), args.revisits);
    let days = app.settings.reminders.days_ahead.clamp(1, 7);
    tokio::task::spawn_blocking(move || {
        crate::faults::write_customers(&d, INSTITUTION, "话术基准门诊部", n, days)
    })
    .await??;
    let importer = InProcessPool::start(app.clone(), vec![ImportFile::QUEUE]);
    let (batch, files) = revisit::import::enqueue_plan(&app, &dir).await?;
    revisit::commands::wait::import_batch(&app, &batch, files, Duration::from_secs(600)).await?;
    importer.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);

    let workers = InProcessPool::start(
        app.clone(),
        vec![
            ReminderScan::QUEUE,
            GreetingGenerate::QUEUE,
            MessageSend::QUEUE,
        ],
    );
    // The bench's own scratch database, whose peer plays the channel: real sends measured.
    app.store.set_sending(true, "bench").await?;
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let started = Instant::now();
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
    let mut last_report = Instant::now();
    let elapsed = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let revisit::store::RevisitProgress { open, all } =
            app.store.revisit_progress(since).await?;
        if all as usize >= args.revisits && open == 0 {
            break started.elapsed();
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!(
                "   {:.0} s: {} of {all} greetings delivered, {} LLM calls answered",
                started.elapsed().as_secs_f64(),
                all - open,
                peer.answered.load(Ordering::SeqCst)
            );
            last_report = Instant::now();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(args.timeout_secs),
            "not finished after {} s: {open} of {all} greetings still open",
            args.timeout_secs
        );
    };
    workers.stop().await?;
    let revisits = app.store.revisits_since(since).await?;
    let sent = revisits
        .iter()
        .filter(|r| r.status == revisit::domain::revisit::RevisitStatus::Sent)
        .count();
    let by_llm = revisits
        .iter()
        .filter(|r| r.generated_by == Some(revisit::domain::revisit::Writer::Llm))
        .count();
    let rate = sent as f64 / elapsed.as_secs_f64();
    let bound = args.concurrency as f64 / (args.llm_delay_ms as f64 / 1000.0);
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| greetings delivered (LLM {by_llm}, of {}) | {sent} in {:.2} s |",
        revisits.len(),
        elapsed.as_secs_f64()
    );
    println!("| greetings/s, scan to last delivery | {rate:.1} |");
    println!(
        "| bound: {} in flight / {} ms | {bound:.1}/s |",
        args.concurrency, args.llm_delay_ms
    );
    println!("| share of the bound | {:.0} % |", rate / bound * 100.0);
    if let Some(first) = *peer
        .first
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        println!(
            "| scan enqueued to the first LLM call | {:.2} s |",
            first.duration_since(started).as_secs_f64()
        );
    }
    println!(
        "| LLM calls: answered, most at once | {}, {} |",
        peer.answered.load(Ordering::SeqCst),
        peer.peak.load(Ordering::SeqCst)
    );
    anyhow::ensure!(
        sent == args.revisits,
        "only {sent} of {} greetings were delivered",
        args.revisits
    );
    Ok(())
}
