//! `revisit bench clickhouse`: the analytics projection at scale.
//!
//! 1. Generates one large institution (as `bench import` does) and imports it through the
//!    queue with no projection worker running, so every change waits in the change log.
//! 2. Starts the projection's workers (dispatch and sync, in this process) and times the
//!    catch-up: from the first dispatch until nothing is left to sync.
//! 3. Exports the same rows from ClickHouse as TSV and times `clickhouse-client` inserting
//!    them into tables of the same definition: the server's own rate for these rows.
//! 4. Times the dashboard from ClickHouse (the chain's view, all queries at once).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context;
use revisit_jobs::{ImportFile, Job, ProjectionDispatch, ProjectionName, ProjectionSync};

use crate::cli::BenchClickhouseArgs;
use revisit::{
    analytics, app::App, config::Backend, config::Settings, projections::Projection,
    queue::worker::InProcessPool, store,
};

pub async fn run(mut settings: Settings, args: BenchClickhouseArgs) -> anyhow::Result<()> {
    settings.cron.enabled = false;
    anyhow::ensure!(
        settings.backend() == Backend::Postgres,
        "bench clickhouse runs on PostgreSQL: set DATABASE_URL=postgres://…"
    );
    anyhow::ensure!(
        settings.clickhouse.enabled(),
        "bench clickhouse needs ClickHouse: set CLICKHOUSE_URL (e.g. http://127.0.0.1:8123)"
    );
    let dir = crate::import::tempfile_dir()?;
    println!(
        "ClickHouse 基准 benchmark: {} customers, {} orders under {}",
        args.customers,
        args.orders,
        dir.display()
    );
    let (d, c, o) = (dir.clone(), args.customers, args.orders);
    tokio::task::spawn_blocking(move || crate::import::generate(&d, c, o)).await??;

    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    let ch = app
        .projections
        .clickhouse
        .clone()
        .context("ClickHouse is configured")?;
    ch.reset()
        .await
        .context("recreating the ClickHouse tables")?;
    // Changes made before this run are not part of it.
    drain_changes(&app).await?;

    let t = Instant::now();
    let importers = InProcessPool::start(app.clone(), vec![ImportFile::QUEUE]);
    let (batch, files) = revisit::import::enqueue_plan(&app, &dir).await?;
    while (app.store.import_log(&batch).await?.len()) < files {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    importers.stop().await?;
    println!("   imported in {:.1} s", t.elapsed().as_secs_f64());
    let waiting = app.store.projection_lag(ProjectionName::Clickhouse).await?;
    println!(
        "   changes waiting for ClickHouse: {} keys",
        waiting.total()
    );
    anyhow::ensure!(
        waiting.total() > 0,
        "the import changed nothing: this database already holds the generated institution; \
         run the benchmark on a fresh database (a new name in DATABASE_URL)"
    );

    let t = Instant::now();
    let syncers = InProcessPool::start(
        app.clone(),
        vec![ProjectionDispatch::QUEUE, ProjectionSync::QUEUE],
    );
    store::enqueue(
        app.store.as_ref(),
        &app.settings,
        &ProjectionDispatch {},
        None,
    )
    .await?;
    loop {
        let lag = app.store.projection_lag(ProjectionName::Clickhouse).await?;
        if lag.total() == 0 {
            break;
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(3600),
            "not caught up after an hour: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let catch_up = t.elapsed();
    syncers.stop().await?;
    let client = ch.client();
    let customers: u64 = client
        .query("SELECT count() FROM customers FINAL")
        .fetch_one()
        .await?;
    let orders: u64 = client
        .query("SELECT count() FROM orders FINAL")
        .fetch_one()
        .await?;
    anyhow::ensure!(
        customers as usize >= args.customers && orders as usize >= args.orders,
        "ClickHouse holds {customers} customers and {orders} orders after the catch-up"
    );
    let rows = customers + orders;
    let sync_rate = rows as f64 / catch_up.as_secs_f64();

    let tsv = tsv_rate(&app, &dir).await;
    let today = chrono::Utc::now().date_naive();
    // Live: every run asks ClickHouse (the remembered facts are forgotten first).
    let live = time_runs(args.dashboard_runs, || async {
        *app.dashboard_memo.lock().expect("memo lock") = None;
        analytics::dashboard(app.dashboard_sources(), None, today)
            .await
            .map(|_| ())
    })
    .await?;
    // Served: what the API does, with the facts remembered while nothing has changed (the
    // first run asks ClickHouse, the others check the change log's version and ClickHouse's lag).
    *app.dashboard_memo.lock().expect("memo lock") = None;
    let served = time_runs(args.dashboard_runs, || async {
        analytics::dashboard(app.dashboard_sources(), None, today)
            .await
            .map(|_| ())
    })
    .await?;
    println!();
    println!("| ClickHouse {} | rows | rate |", ch_version(&app).await);
    println!("|---|---|---|");
    println!(
        "| projection catch-up (dispatch + sync jobs, from PostgreSQL) | {rows} | {sync_rate:.0} rows/s ({:.1} s) |",
        catch_up.as_secs_f64()
    );
    match tsv {
        Ok((n, took)) => {
            let rate = n as f64 / took.as_secs_f64();
            println!(
                "| clickhouse-client, the same rows as TSV | {n} | {rate:.0} rows/s ({:.1} s) |",
                took.as_secs_f64()
            );
            println!(
                "| catch-up / clickhouse-client | | {:.0} % |",
                sync_rate / rate * 100.0
            );
        }
        Err(e) => println!("| clickhouse-client, the same rows as TSV | — | not measured: {e:#} |"),
    }
    println!(
        "| dashboard from ClickHouse, asked every time (chain, {} runs) | | median {} ms, slowest {} ms |",
        live.len(),
        live[live.len() / 2].as_millis(),
        live[live.len() - 1].as_millis()
    );
    println!(
        "| dashboard as the API serves it, data unchanged (chain, {} runs) | | median {} ms, slowest {} ms |",
        served.len(),
        served[served.len() / 2].as_millis(),
        served[served.len() - 1].as_millis()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Times `runs` (at least one) calls of `f`, sorted.
async fn time_runs<F, Fut>(runs: usize, f: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times)
}

async fn ch_version(app: &App) -> String {
    match &app.projections.clickhouse {
        Some(ch) => ch.version().await.unwrap_or_default(),
        None => String::new(),
    }
}

/// Deletes the change log's backlog without syncing it: dispatch with no projection, after
/// forgetting ClickHouse's registration (a previous run on this database made it; the worker
/// pool started next registers it again).
async fn drain_changes(app: &App) -> anyhow::Result<()> {
    app.store
        .unregister_projection(ProjectionName::Clickhouse)
        .await?;
    while app.store.dispatch_changes(&[], 1).await?.changes > 0 {}
    Ok(())
}

/// Exports customers and orders as TSV and times `clickhouse-client` inserting them into
/// copies of the tables. Returns (rows, time).
async fn tsv_rate(app: &App, dir: &Path) -> anyhow::Result<(u64, Duration)> {
    let ch = app.projections.clickhouse.as_ref().context("configured")?;
    let s = &app.settings.clickhouse;
    let host = url_host(&s.url);
    let db = ch.database();
    let client = ch.client();
    let mut total = Duration::ZERO;
    let mut rows = 0u64;
    for table in ["customers", "orders"] {
        let file = dir.join(format!("{table}.tsv"));
        let export = clickhouse_client(
            &host,
            s,
            &format!("SELECT * FROM {db}.{table} FINAL FORMAT TabSeparated"),
        )
        .stdout(std::fs::File::create(&file)?)
        .status()
        .await
        .context("running clickhouse-client (install clickhouse-client)")?;
        anyhow::ensure!(
            export.success(),
            "clickhouse-client could not export {table}"
        );
        client
            .query(&format!("DROP TABLE IF EXISTS {db}.bench_tsv_{table}"))
            .execute()
            .await?;
        client
            .query(&format!(
                "CREATE TABLE {db}.bench_tsv_{table} AS {db}.{table}"
            ))
            .execute()
            .await?;
        let t = Instant::now();
        let insert = clickhouse_client(
            &host,
            s,
            &format!("INSERT INTO {db}.bench_tsv_{table} FORMAT TabSeparated"),
        )
        .stdin(std::fs::File::open(&file)?)
        .status()
        .await?;
        total += t.elapsed();
        anyhow::ensure!(
            insert.success(),
            "clickhouse-client could not insert {table}"
        );
        let n: u64 = client
            .query(&format!("SELECT count() FROM {db}.bench_tsv_{table}"))
            .fetch_one()
            .await?;
        rows += n;
        client
            .query(&format!("DROP TABLE {db}.bench_tsv_{table}"))
            .execute()
            .await?;
    }
    Ok((rows, total))
}

/// `clickhouse-client` (native protocol, its default port) running `query` as the configured user.
fn clickhouse_client(
    host: &str,
    s: &revisit::config::ClickhouseSettings,
    query: &str,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("clickhouse-client");
    cmd.args(["--host", host, "--user", &s.user, "--password"])
        .arg(s.password.expose())
        .args(["--query", query]);
    cmd
}

/// The host of an `http://host:port` URL.
fn url_host(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    host_port
        .rsplit_once(':')
        .map_or(host_port, |(h, _)| h)
        .to_owned()
}
