//! `revisit bench graph`: the embedded relation graph on a large institution, measured.
//!
//! 1. Generates and imports one institution (`bench import`'s generator, through the queue),
//!    then gives every fourth customer a referrer (`referrer_code`, an earlier customer), which
//!    the generator does not write.
//! 2. Full resync: `sync graph --full`'s rebuild, run by in-process sync workers until the lag
//!    is zero (store reads, facts, graph writes in jobs of 500 entities): edges/s.
//! 3. Query latency, p50 and p99: a customer's relations to depth 2 (`graph relations` as the
//!    library runs it, with the primary store's customer look-up), customers sharing a doctor
//!    or project, and "who had X also had Y" over the institution.

use std::time::Duration;

use anyhow::Context;
use revisit_jobs::ProjectionName;

use crate::cli::BenchGraphArgs;
use crate::vectors::{full_resync, import_generated, ms, percentile, time_each};
use revisit::{app::App, config::Settings, projections::graph::SharedBy, store};

pub async fn run(mut settings: Settings, args: BenchGraphArgs) -> anyhow::Result<()> {
    settings.cron.enabled = false;
    settings.clickhouse.url = String::new();
    settings.vectors.enabled = false;
    anyhow::ensure!(
        settings.graph.nebula_addr.is_empty(),
        "bench graph measures the embedded graph: unset NEBULA_ADDR / graph.nebula_addr"
    );
    settings.graph.enabled = true;
    let dir = crate::import::tempfile_dir()?;
    println!(
        "关系图基准 graph benchmark: {} customers, {} orders under {} ({}, embedded graph)",
        args.customers,
        args.orders,
        dir.display(),
        settings.backend().name(),
    );
    let (d, c, o) = (dir.join("data"), args.customers, args.orders);
    tokio::task::spawn_blocking(move || crate::import::generate(&d, c, o)).await??;

    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    let graph = app.projections.graph.clone().context("the graph is on")?;
    import_generated(&app, &dir.join("data")).await?;
    let referred = add_referrers(&app).await?;
    println!("   {referred} customers given a referrer");
    // The import's own changes are not part of the resync.
    app.store
        .unregister_projection(ProjectionName::Graph)
        .await?;
    while app.store.dispatch_changes(&[], 1).await?.changes > 0 {}

    // 2. Full resync through the jobs.
    let (queued, resync) = full_resync(&app, ProjectionName::Graph).await?;
    let size = graph.store.size().await?;
    anyhow::ensure!(
        size.vertices as usize >= args.customers,
        "the graph holds {} vertices after the resync",
        size.vertices
    );
    println!(
        "   full resync: {queued} entities, {} vertices, {} edges in {:.1} s: {:.0} edges/s",
        size.vertices,
        size.edges,
        resync.as_secs_f64(),
        size.edges as f64 / resync.as_secs_f64()
    );

    // 3. Queries, spread over the customers.
    let step = (args.customers / args.queries.max(1)).max(1);
    let codes: Vec<String> = (0..args.customers)
        .step_by(step)
        .take(args.queries.max(1))
        .map(crate::import::customer_code)
        .collect();
    let store = app.store.as_ref();
    let mut reached = 0usize;
    let depth2 = time_each(&codes, |code| {
        let graph = graph.clone();
        async move {
            let found = graph.relations_of(store, &code, None, 2).await?;
            anyhow::ensure!(!found.is_empty(), "{code} has no relations");
            Ok(())
        }
    })
    .await?;
    for code in codes.iter().take(20) {
        reached += graph.relations_of(store, code, None, 2).await?.len();
    }
    let few: Vec<String> = codes
        .iter()
        .take(args.queries.clamp(1, 50))
        .cloned()
        .collect();
    let shared = time_each(&few, |code| {
        let graph = graph.clone();
        async move {
            graph
                .shared_with(store, &code, None, SharedBy::Doctors, 10)
                .await?;
            Ok(())
        }
    })
    .await?;
    let items: Vec<String> = (0..10).map(|i| format!("PRJ-{i:03}")).collect();
    let also = time_each(&items, |item| {
        let graph = graph.clone();
        async move {
            graph
                .also_had(store, crate::import::INSTITUTION, &item, 10)
                .await?;
            Ok(())
        }
    })
    .await?;
    let line = |what: &str, t: &[Duration]| {
        println!(
            "   {what}: p50 {:.2} ms, p99 {:.2} ms over {} queries",
            ms(percentile(t, 50)),
            ms(percentile(t, 99)),
            t.len()
        )
    };
    line("relations to depth 2", &depth2);
    println!(
        "     ({:.1} relations a customer on average)",
        reached as f64 / codes.len().min(20) as f64
    );
    line(
        "customers sharing a doctor (institution-wide fan-out)",
        &shared,
    );
    line("also had, over the institution", &also);
    println!(
        "   target: depth-2 p99 < 50 ms embedded on PostgreSQL: {}",
        if ms(percentile(&depth2, 99)) < 50.0 {
            "met"
        } else {
            "not met"
        }
    );
    Ok(())
}

/// Every fourth customer referred by a customer generated before them (the generator's codes
/// sort in generation order).
async fn add_referrers(app: &App) -> anyhow::Result<u64> {
    Ok(match &app.pool {
        store::DbPool::Postgres(p) => sqlx::query(
            "UPDATE customers c SET referrer_code = r.code
             FROM customers r WHERE c.id % 4 = 1 AND r.id = c.id / 4 + 1",
        )
        .execute(p)
        .await?
        .rows_affected(),
        store::DbPool::Sqlite(p) => sqlx::query(
            "UPDATE customers SET referrer_code =
                 (SELECT r.code FROM customers r WHERE r.id = customers.id / 4 + 1)
             WHERE id % 4 = 1",
        )
        .execute(p)
        .await?
        .rows_affected(),
    })
}
