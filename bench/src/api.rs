//! `revisit bench api`: the REST API under load.
//!
//! 1. Makes sure the database holds the large generated institution (`BENCH-001`, as `bench
//!    import` makes it): imports it through the queue when it is missing, reuses it otherwise.
//! 2. Starts the API in this process on a free port of 127.0.0.1 with a staff token of it.
//! 3. Sends `GET /api/v1/customers/BENCH-001?limit=50&after=…` at a fixed rate (open loop: a
//!    request is due every 1/rate seconds whether or not earlier ones have answered, and its
//!    latency counts from when it was due), each for a page starting at a random customer, and
//!    prints the latency percentiles.
//! 4. Times the dashboard through HTTP: the first request after a change (computed) and the
//!    ones after it (served again while nothing changed).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use revisit_jobs::{ImportFile, Job};

use crate::cli::BenchApiArgs;
use revisit::{
    api::{self, auth},
    app::App,
    config::Settings,
    queue::worker::InProcessPool,
    store::{
        self,
        access::{NewToken, Role},
        directory::CustomerQuery,
    },
};

const INSTITUTION: &str = "BENCH-001";

pub async fn run(mut settings: Settings, args: BenchApiArgs) -> anyhow::Result<()> {
    settings.cron.enabled = false;
    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    let inst = match app.store.institution(INSTITUTION).await? {
        Some(i) => {
            println!("API 基准 benchmark: reusing {INSTITUTION} in this database");
            i
        }
        None => {
            import_institution(&app, args.customers, args.orders).await?;
            app.store
                .institution(INSTITUTION)
                .await?
                .context("the generated institution was imported")?
        }
    };
    // Every customer code, to start pages anywhere.
    let mut codes = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .store
            .customer_page(&CustomerQuery {
                institution_id: inst.id,
                search: None,
                after: after.clone(),
                limit: 10_000,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.code.clone());
        codes.extend(page.into_iter().map(|c| c.code));
    }
    println!("   {} customers in {INSTITUTION}", codes.len());
    anyhow::ensure!(!codes.is_empty(), "{INSTITUTION} has no customers");

    let (secret, prefix) = auth::new_secret()?;
    app.store
        .create_token(&NewToken {
            hash: auth::digest(&secret),
            prefix,
            role: Role::Staff,
            institution_id: Some(inst.id),
            label: Some("bench api".into()),
            expires_in_days: Some(1),
        })
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = api::router(app.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    // Warm-up: connections and prepared statements.
    for i in 0..50 {
        let code = &codes[(i * 7919) % codes.len()];
        get(
            &http,
            &secret,
            &format!("{base}/api/v1/customers/{INSTITUTION}?limit=50&after={code}"),
        )
        .await?;
    }

    let codes = Arc::new(codes);
    let total = (args.rate * args.seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        let due = started + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let (http, secret, codes) = (http.clone(), secret.clone(), codes.clone());
        let url = format!(
            "{base}/api/v1/customers/{INSTITUTION}?limit=50&after={}",
            codes[fastrand::usize(..codes.len())]
        );
        tasks.push(tokio::spawn(async move {
            let ok = get(&http, &secret, &url).await.is_ok();
            (due.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0usize;
    for t in tasks {
        let (latency, ok) = t.await?;
        latencies.push(latency);
        if !ok {
            errors += 1;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];

    // The dashboard through HTTP: computed (as after a change: the remembered facts are
    // forgotten first), then served again while nothing changed.
    let dashboard = format!("{base}/api/v1/analytics/dashboard");
    let mut computed = Vec::new();
    for _ in 0..5 {
        *app.dashboard_memo.lock().expect("memo lock") = None;
        let t = Instant::now();
        get(&http, &secret, &dashboard).await?;
        computed.push(t.elapsed());
    }
    computed.sort();
    let mut served = Vec::new();
    for _ in 0..args.dashboard_runs.max(1) {
        let t = Instant::now();
        get(&http, &secret, &dashboard).await?;
        served.push(t.elapsed());
    }
    served.sort();
    let source = match &app.projections.clickhouse {
        Some(_) => "ClickHouse",
        None => "the primary store",
    };
    server.abort();

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!();
    println!("| {} | |", app.store.backend().name());
    println!("|---|---|");
    println!(
        "| customers list, {} req/s for {} s (open loop, random pages of 50) | {} requests in {:.1} s, {} errors |",
        args.rate,
        args.seconds,
        latencies.len(),
        elapsed.as_secs_f64(),
        errors
    );
    println!(
        "| latency p50 / p90 / p99 / max | {} / {} / {} / {} |",
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(*latencies.last().expect("requests"))
    );
    println!(
        "| dashboard from {source}, computed (as after a change; 5 runs) | median {}, slowest {} |",
        ms(computed[2]),
        ms(computed[4])
    );
    println!(
        "| dashboard, served again ({} runs) | median {}, slowest {} |",
        served.len(),
        ms(served[served.len() / 2]),
        ms(served[served.len() - 1])
    );
    Ok(())
}

async fn get(http: &reqwest::Client, token: &str, url: &str) -> anyhow::Result<()> {
    let res = http.get(url).bearer_auth(token).send().await?;
    anyhow::ensure!(res.status().is_success(), "{url}: {}", res.status());
    res.bytes().await?;
    Ok(())
}

/// Generates the institution and imports it through the queue.
async fn import_institution(app: &Arc<App>, customers: usize, orders: usize) -> anyhow::Result<()> {
    let dir = crate::import::tempfile_dir()?;
    println!("API 基准 benchmark: generating {customers} customers and {orders} orders");
    let d = dir.clone();
    tokio::task::spawn_blocking(move || crate::import::generate(&d, customers, orders)).await??;
    let t = Instant::now();
    let importers = InProcessPool::start(app.clone(), vec![ImportFile::QUEUE]);
    let (batch, files) = revisit::import::enqueue_plan(app, &dir).await?;
    while app.store.import_log(&batch).await?.len() < files {
        if let Some(e) = app.store.dead_import_error(&batch).await? {
            anyhow::bail!("the import failed: {e}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    importers.stop().await?;
    println!("   imported in {:.1} s", t.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
