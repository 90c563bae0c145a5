//! `revisit bench vectors`: vector search on a large institution, measured.
//!
//! 1. Generates and imports one institution (`bench import`'s generator, through the queue).
//! 2. Full resync into a fresh embedded folder: `sync vectors --full`'s rebuild, run by
//!    in-process sync workers until the lag is zero (store reads, embedding and upserts, in
//!    jobs of 500 entities), then the engine's optimisation (its search index), timed apart.
//! 3. The same points, prepared beforehand (read and embedded), upserted into another fresh
//!    folder in one bulk call of the engine: what the engine alone can take.
//! 4. Search latency on the optimised index: the nearest 10 customers of the institution to a
//!    customer's vector, `similar` as the CLI runs it (primary store read and embedding
//!    included; warmed once over the same customers, as a serving process is), and a catalogue
//!    search; p50 and p99 of each. Then a process's first search,
//!    which opens the folder, and how often a customer's own vector found a point as close as
//!    its own first (the approximate index's recall at 1).

use std::time::{Duration, Instant};

use anyhow::Context;
use revisit_jobs::{ImportFile, Job, ProjectionDispatch, ProjectionName, ProjectionSync};

use crate::cli::BenchVectorsArgs;
use revisit::{
    app::App,
    config::Settings,
    handlers::projection_rebuild,
    projections::vectors::{
        Collection, Point, VectorIndex, documents,
        edge::{EdgeIndex, Sharing},
    },
    queue::worker::InProcessPool,
    store,
};

pub async fn run(mut settings: Settings, args: BenchVectorsArgs) -> anyhow::Result<()> {
    settings.cron.enabled = false;
    settings.clickhouse.url = String::new();
    // The relation graph's sync jobs would share the queue with the measured ones.
    settings.graph.enabled = false;
    anyhow::ensure!(
        settings.vectors.url.is_empty(),
        "bench vectors measures the embedded engine: unset QDRANT_URL / vectors.url"
    );
    settings.vectors.enabled = true;
    let dir = crate::import::tempfile_dir()?;
    let vectors_dir = dir.join("vectors");
    settings.vectors.dir = vectors_dir.display().to_string();
    println!(
        "向量基准 vector benchmark: {} customers, {} orders under {} ({}, {} dimensions)",
        args.customers,
        args.orders,
        dir.display(),
        settings.backend().name(),
        settings.vectors.dimension
    );
    let (d, c, o) = (dir.join("data"), args.customers, args.orders);
    tokio::task::spawn_blocking(move || crate::import::generate(&d, c, o)).await??;

    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    let vectors = app.projections.vectors.clone().context("vectors are on")?;
    import_generated(&app, &dir.join("data")).await?;
    // The import's own changes are not part of the resync.
    app.store
        .unregister_projection(ProjectionName::Vectors)
        .await?;
    while app.store.dispatch_changes(&[], 1).await?.changes > 0 {}

    // 2. Full resync through the jobs.
    let (_, resync) = full_resync(&app, ProjectionName::Vectors).await?;
    let t = Instant::now();
    vectors.index.optimize().await?;
    let optimise = t.elapsed();
    let mut points = 0;
    for c in Collection::ALL {
        points += vectors.index.count(c).await?;
    }
    anyhow::ensure!(
        points >= args.customers,
        "the index holds {points} points after the resync"
    );

    // 3. The same points prepared, then one bulk upsert.
    let ids: Vec<i64> = sqlx_ids(&app).await?;
    let t = Instant::now();
    let mut prepared: Vec<Point> = Vec::with_capacity(ids.len());
    for part in ids.chunks(5_000) {
        let profiles = app.store.search_profiles(part).await?;
        let docs: Vec<documents::Document> = profiles
            .iter()
            .filter(|p| !p.opted_out)
            .map(|p| documents::customer(p, 1))
            .collect();
        let texts: Vec<String> = docs.iter().map(|d| d.text.clone()).collect();
        let vecs = vectors.embedder.embed(&texts).await?;
        prepared.extend(docs.into_iter().zip(vecs).map(|(d, vector)| Point {
            id: d.id,
            vector,
            sparse: d.sparse,
            institution_id: d.institution_id,
            payload: d.payload,
        }));
    }
    let prepare = t.elapsed();
    let queries: Vec<(Vec<f32>, i64)> = prepared
        .iter()
        .step_by((prepared.len() / args.queries.max(1)).max(1))
        .take(args.queries.max(1))
        .map(|p| (p.vector.clone(), p.institution_id.unwrap_or_default()))
        .collect();
    let bulk_index = EdgeIndex::with_sharing(
        dir.join("bulk"),
        app.settings.vectors.dimension,
        Sharing {
            lock_wait: Duration::from_secs(1),
            hold: Duration::from_secs(3600),
        },
    );
    bulk_index.init().await?;
    let n_bulk = prepared.len();
    let t = Instant::now();
    bulk_index.upsert(Collection::Customers, prepared).await?;
    let bulk = t.elapsed();
    drop(bulk_index);

    // 4. Search latency. And how often a customer's own vector finds a point as close as its
    // own first (itself, or a customer with the same text): what the index gives up for speed.
    let mut first_is_exact = 0;
    for (v, inst) in &queries {
        let hits = vectors
            .index
            .search(Collection::Customers, v.clone().into(), Some(*inst), 10)
            .await?;
        anyhow::ensure!(hits.len() == 10, "a search found {} points", hits.len());
        if hits[0].score > 0.999 {
            first_is_exact += 1;
        }
    }
    let nearest = time_each(&queries, |(v, inst)| {
        let vectors = vectors.clone();
        async move {
            vectors
                .index
                .search(Collection::Customers, v.into(), Some(inst), 10)
                .await
                .map(|_| ())
        }
    })
    .await?;
    let runs = args.queries.clamp(1, args.customers);
    let codes: Vec<String> = (0..runs)
        .map(|i| crate::import::customer_code(1 + i * (args.customers / runs).max(1)))
        .collect();
    let similar_once = |code: String| {
        let (vectors, app) = (vectors.clone(), app.clone());
        async move {
            vectors
                .similar(app.store.as_ref(), &code, None, 10)
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
    };
    // Warmed as the nearest search was (by the recall loop above): once over the codes, so the
    // pages of the sparse index, the payloads and the store are read from disk before they are
    // timed. A process's first search, cold, is measured below.
    time_each(&codes, &similar_once).await?;
    let similar = time_each(&codes, &similar_once).await?;
    let words: Vec<String> = [
        "补水",
        "抗衰",
        "祛斑",
        "面膜",
        "光子",
        "玻尿酸",
        "修复",
        "美白",
    ]
    .iter()
    .cycle()
    .take(200)
    .map(|s| s.to_string())
    .collect();
    let catalogue = time_each(&words, |w| {
        let vectors = vectors.clone();
        async move {
            vectors
                .search_catalogue(Collection::Projects, &w, 10)
                .await
                .map(|_| ())
        }
    })
    .await?;

    // A process's first search: the folder opened (the index closed first, as when idle).
    let (v0, inst0) = queries[0].clone();
    let dimension = app.settings.vectors.dimension;
    drop(vectors);
    // The app's own index lets the folder go once idle for its hold time.
    tokio::time::sleep(Duration::from_secs(app.settings.vectors.hold_secs + 2)).await;
    let mut cold = Vec::new();
    for _ in 0..3 {
        let fresh = EdgeIndex::new(&vectors_dir, dimension);
        let t = Instant::now();
        fresh
            .search(Collection::Customers, v0.clone().into(), Some(inst0), 10)
            .await?;
        cold.push(t.elapsed());
    }
    cold.sort();
    let vectors = app.projections.vectors.clone().context("vectors are on")?;

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!();
    println!(
        "| embedded engine (qdrant-edge 0.7), {} | points | time | rate |",
        vectors.embedder.describe()
    );
    println!("|---|---|---|---|");
    println!(
        "| full resync: rebuild + sync jobs (store read, embedding, upsert) | {points} | {:.1} s | {:.0} points/s |",
        resync.as_secs_f64(),
        rate(points, resync)
    );
    println!(
        "| then the engine's optimisation (search index) | | {:.1} s | |",
        optimise.as_secs_f64()
    );
    println!(
        "| preparing the same customer points (store read, embedding) | {n_bulk} | {:.1} s | {:.0} points/s |",
        prepare.as_secs_f64(),
        rate(n_bulk, prepare)
    );
    println!(
        "| the prepared points in one bulk upsert | {n_bulk} | {:.1} s | {:.0} points/s |",
        bulk.as_secs_f64(),
        rate(n_bulk, bulk)
    );
    println!(
        "| resync / bulk upsert | | | {:.0} % |",
        rate(points, resync) / rate(n_bulk, bulk) * 100.0
    );
    println!();
    println!(
        "| search ({} customers in one institution) | runs | p50 | p99 |",
        args.customers
    );
    println!("|---|---|---|---|");
    for (what, times) in [
        (
            "nearest 10 customers of the institution (index only)",
            &nearest,
        ),
        ("`similar` (store read + embedding + search)", &similar),
        (
            "catalogue search of projects (embedding + search)",
            &catalogue,
        ),
    ] {
        println!(
            "| {what} | {} | {:.2} ms | {:.2} ms |",
            times.len(),
            ms(percentile(times, 50)),
            ms(percentile(times, 99))
        );
    }
    println!(
        "| a process's first search: the folder opened, then the search (3 runs) | 3 | {:.0} ms | {:.0} ms (slowest) |",
        ms(cold[1]),
        ms(cold[2])
    );
    println!(
        "| searches whose own point, or one with the same text, came first | {} | {:.1} % | |",
        queries.len(),
        first_is_exact as f64 * 100.0 / queries.len() as f64
    );
    drop(vectors);
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Imports the generated tree in `data` through the queue, by in-process import workers.
pub(crate) async fn import_generated(
    app: &std::sync::Arc<App>,
    data: &std::path::Path,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let importers = InProcessPool::start(app.clone(), vec![ImportFile::QUEUE]);
    let (batch, files) = revisit::import::enqueue_plan(app, data).await?;
    while (app.store.import_log(&batch).await?.len()) < files {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    importers.stop().await?;
    println!("   imported in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// `sync <name> --full`'s rebuild, run by in-process sync workers until the lag is zero:
/// how many entities it queued, and how long it took.
pub(crate) async fn full_resync(
    app: &std::sync::Arc<App>,
    name: ProjectionName,
) -> anyhow::Result<(u64, Duration)> {
    let t = Instant::now();
    let queued = projection_rebuild::rebuild(app, name, |_, _| {}).await?;
    let syncers = InProcessPool::start(
        app.clone(),
        vec![ProjectionDispatch::QUEUE, ProjectionSync::QUEUE],
    );
    let mut shown = Instant::now();
    loop {
        let lag = app.store.projection_lag(name).await?;
        if lag.total() == 0 {
            break;
        }
        if shown.elapsed() > Duration::from_secs(5) {
            eprintln!("   resync: {} of {queued} entities to go", lag.total());
            shown = Instant::now();
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(3600),
            "not caught up after an hour: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t.elapsed();
    syncers.stop().await?;
    Ok((queued, took))
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p`th percentile of sorted times (nearest rank).
pub(crate) fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Times `f` on each input, one after another; sorted.
pub(crate) async fn time_each<T: Clone, F, Fut>(inputs: &[T], f: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(inputs.len());
    for input in inputs {
        let t = Instant::now();
        f(input.clone()).await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times)
}

/// Every customer id, in order.
async fn sqlx_ids(app: &App) -> anyhow::Result<Vec<i64>> {
    Ok(match &app.pool {
        store::DbPool::Postgres(p) => {
            sqlx::query_scalar("SELECT id FROM customers ORDER BY id")
                .fetch_all(p)
                .await?
        }
        store::DbPool::Sqlite(p) => {
            sqlx::query_scalar("SELECT id FROM customers ORDER BY id")
                .fetch_all(p)
                .await?
        }
    })
}
