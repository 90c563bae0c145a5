//! `revisit bench scan`: the daily birthday scan's read over a large institution.
//!
//! Generates and imports one institution (`bench import`'s generator, through the queue; its
//! birthdays fall on every day of the year), then times the candidate query the scan runs
//! (`Repository::birthday_candidates`: customers whose birthday is kept in the window, one per
//! person, not opted out) for `--runs` windows of `--days` days spread over the year: p50, p99
//! and the candidates found. `--reuse` times a database an earlier run imported.

use std::time::Instant;

use chrono::{Days, NaiveDate};

use crate::cli::BenchScanArgs;
use crate::vectors::{import_generated, ms, percentile};
use revisit::{app::App, config::Settings, domain::birthday::BirthdayWindow, store};

pub async fn run(mut settings: Settings, args: BenchScanArgs) -> anyhow::Result<()> {
    settings.cron.enabled = false;
    settings.clickhouse.url = String::new();
    settings.vectors.enabled = false;
    settings.graph.enabled = false;
    let dir = crate::import::tempfile_dir()?;
    println!(
        "生日扫描基准 birthday scan benchmark: {} customers, {} orders under {} ({}), windows of {} days",
        args.customers,
        args.orders,
        dir.display(),
        settings.backend().name(),
        args.days + 1,
    );
    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    if !args.reuse {
        let (d, c, o) = (dir.join("data"), args.customers, args.orders);
        tokio::task::spawn_blocking(move || crate::import::generate(&d, c, o)).await??;
        import_generated(&app, &dir.join("data")).await?;
    }
    app.store.refresh_statistics().await?;
    let institutions = vec![crate::import::INSTITUTION.to_owned()];
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    let windows: Vec<BirthdayWindow> = (0..args.runs.max(1))
        .map(|k| {
            let today = start + Days::new((k as u64 * 365 / args.runs.max(1) as u64) % 365);
            BirthdayWindow::new(today, args.days)
        })
        .collect();
    // One scan first, so that every timed one finds the tables in memory as the daily one would
    // after a day's work.
    app.store
        .birthday_candidates(&institutions, &windows[0])
        .await?;
    let mut times = Vec::with_capacity(windows.len());
    let mut found = Vec::with_capacity(windows.len());
    for window in &windows {
        let t = Instant::now();
        let candidates = app.store.birthday_candidates(&institutions, window).await?;
        times.push(t.elapsed());
        found.push(candidates.len());
    }
    times.sort();
    found.sort_unstable();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| candidate query, {} windows of {} days | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        windows.len(),
        args.days + 1,
        ms(percentile(&times, 50)),
        ms(percentile(&times, 99)),
        ms(*times.last().expect("at least one run")),
    );
    println!(
        "| candidates per window | {} to {} (median {}) |",
        found[0],
        found[found.len() - 1],
        found[found.len() / 2]
    );
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
