//! `revisit bench import`: the import of one large institution, measured.
//!
//! 1. Generates the files of one institution in the import layout: the common files, then
//!    `--customers` customers (~330 bytes each, so 300,000 make a ~100 MB file) and `--orders`
//!    orders of one to three items, written as a stream.
//! 2. Imports them through the real queue (an in-process `import.file` worker, as a daemon
//!    would), timing the customers file and the orders file, with the process's peak RSS
//!    reset before the import (`/proc/self/clear_refs`) so it measures the import alone.
//! 3. On PostgreSQL, loads the same rows as CSV with `COPY ... FROM STDIN` into tables with
//!    the same keys, and prints both rates side by side.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use revisit_jobs::{ImportFile, Job};

use crate::{
    app::App,
    cli::BenchImportArgs,
    config::Settings,
    queue::worker::InProcessPool,
    store::{self, DbPool},
};

const INSTITUTION: &str = "BENCH-001";
const PROJECTS: usize = 40;
const PRODUCTS: usize = 40;
const DOCTORS: usize = 12;

fn customer_code(i: usize) -> String {
    format!("{INSTITUTION}-C{i:07}")
}

fn phone(i: usize) -> String {
    format!("139{:08}", i)
}

const SURNAMES: [&str; 8] = ["张", "王", "李", "赵", "刘", "陈", "杨", "黄"];
const GIVEN: [&str; 8] = ["丽", "芳", "娜", "敏", "静", "婷", "欣然", "雨萱"];
const TAGS: [&str; 6] = ["敏感肌", "抗衰老", "油性皮肤", "补水", "轮廓管理", "祛斑"];

/// Writes the generated institution under `dir`.
fn generate(dir: &Path, customers: usize, orders: usize) -> anyhow::Result<()> {
    let common = dir.join("common");
    let inst = dir.join("institutions").join(INSTITUTION);
    std::fs::create_dir_all(&common)?;
    std::fs::create_dir_all(&inst)?;
    std::fs::write(
        common.join("institutions.json"),
        format!(
            r#"[{{"institution_code":"{INSTITUTION}","name":"基准测试医疗美容门诊部","status":"active"}}]"#
        ),
    )?;
    let list = |n: usize, f: &dyn Fn(usize) -> String| {
        format!("[{}]", (0..n).map(f).collect::<Vec<_>>().join(","))
    };
    std::fs::write(
        common.join("projects.json"),
        list(PROJECTS, &|i| {
            format!(
                r#"{{"project_code":"PRJ-{i:03}","name":"项目{i}","category":"注射","standard_price":{}.0,"cycle_days":90}}"#,
                1000 + i * 100
            )
        }),
    )?;
    std::fs::write(
        common.join("products.json"),
        list(PRODUCTS, &|i| {
            format!(
                r#"{{"product_code":"PRD-{i:03}","name":"产品{i}","category":"护肤","brand":"品牌","price":{}.0}}"#,
                100 + i * 10
            )
        }),
    )?;
    std::fs::write(
        common.join("doctors.json"),
        list(DOCTORS, &|i| {
            format!(
                r#"{{"doctor_code":"DOC-{i:02}","institution_code":"{INSTITUTION}","name":"医生{i}","title":"主治医师"}}"#
            )
        }),
    )?;

    let mut w = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(inst.join("customers.json"))?,
    );
    w.write_all(b"[\n")?;
    for i in 0..customers {
        let sep = if i + 1 < customers { "," } else { "" };
        writeln!(
            w,
            r#"{{"customer_code":"{}","person":{{"name":"{}{}","gender":"女","birthday":"19{:02}-{:02}-{:02}","phone":"{}"}},"vip_level":"金卡","source":"朋友推荐","tags":["{}","{}"],"notes":"皮肤较为敏感，注射类项目前需要皮试，术后注意防晒保湿，定期回访了解恢复情况。"}}{sep}"#,
            customer_code(i),
            SURNAMES[i % 8],
            GIVEN[(i / 8) % 8],
            60 + i % 40,
            1 + i % 12,
            1 + i % 28,
            phone(i),
            TAGS[i % 6],
            TAGS[(i + 1) % 6],
        )?;
    }
    w.write_all(b"]\n")?;
    w.flush()?;

    let mut w = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(inst.join("consumption_records.json"))?,
    );
    w.write_all(b"[\n")?;
    for i in 0..orders {
        let items = 1 + i % 3;
        let mut total = 0;
        let mut lines = Vec::with_capacity(items);
        for n in 0..items {
            let (ty, code, price) = if n % 2 == 0 {
                (
                    "project",
                    format!("PRJ-{:03}", (i + n) % PROJECTS),
                    1000 + ((i + n) % PROJECTS) * 100,
                )
            } else {
                (
                    "product",
                    format!("PRD-{:03}", (i + n) % PRODUCTS),
                    100 + ((i + n) % PRODUCTS) * 10,
                )
            };
            total += price;
            lines.push(format!(
                r#"{{"item_type":"{ty}","item_code":"{code}","item_name":"名称","quantity":1,"unit_price":{price}.0,"discount":1.0,"actual_price":{price}.0,"doctor_code":"DOC-{:02}"}}"#,
                i % DOCTORS
            ));
        }
        let sep = if i + 1 < orders { "," } else { "" };
        writeln!(
            w,
            r#"{{"order_number":"{INSTITUTION}-ORD-{i:08}","customer_code":"{}","order_date":"2025-{:02}-{:02}","items":[{}],"total_amount":{total}.0,"payment_method":"微信支付","status":"completed"}}{sep}"#,
            customer_code(i % customers.max(1)),
            1 + i % 12,
            1 + i % 28,
            lines.join(",")
        )?;
    }
    w.write_all(b"]\n")?;
    w.flush()?;
    Ok(())
}

/// Peak resident memory of this process so far, in MB (`VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Starts a new peak for [`peak_rss_mb`] (Linux: writing 5 to `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub async fn run(mut settings: Settings, args: BenchImportArgs) -> anyhow::Result<()> {
    settings.cron.enabled = false;
    let tmp;
    let dir: PathBuf = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    println!(
        "导入基准 import benchmark: generating {} customers and {} orders under {}",
        args.customers,
        args.orders,
        dir.display()
    );
    let t = Instant::now();
    let (d, c, o) = (dir.clone(), args.customers, args.orders);
    tokio::task::spawn_blocking(move || generate(&d, c, o)).await??;
    let inst = dir.join("institutions").join(INSTITUTION);
    let size = |f: &str| {
        std::fs::metadata(inst.join(f))
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    };
    let (customers_mb, orders_mb) = (size("customers.json"), size("consumption_records.json"));
    println!(
        "   generated in {:.1} s: customers.json {customers_mb:.0} MB, consumption_records.json {orders_mb:.0} MB",
        t.elapsed().as_secs_f64()
    );

    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    let backend = app.store.backend();
    let workers = InProcessPool::start(app.clone(), vec![ImportFile::QUEUE]);
    reset_peak_rss();
    let (batch, files) = super::import::enqueue_import(&app, &dir).await?;
    let started = Instant::now();
    // Files are logged one after another: note when the customers and the orders file end.
    let mut marks: Vec<(String, Duration)> = Vec::new();
    loop {
        let rows = app.store.import_log(&batch).await?;
        for r in rows.iter().skip(marks.len()) {
            marks.push((r.path.clone(), started.elapsed()));
        }
        if marks.len() >= files {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            anyhow::bail!("import not finished after an hour");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peak = peak_rss_mb();
    workers.stop().await?;
    let log = app.store.import_log(&batch).await?;
    for r in &log {
        anyhow::ensure!(
            r.rejected == 0,
            "{}: {} records rejected: {:?}",
            r.path,
            r.rejected,
            r.errors.first()
        );
    }
    let at = |name: &str| {
        marks
            .iter()
            .position(|(p, _)| p.ends_with(name))
            .map(|i| {
                (
                    marks[i].1,
                    if i == 0 {
                        Duration::ZERO
                    } else {
                        marks[i - 1].1
                    },
                )
            })
            .expect("file logged")
    };
    let (c_end, c_start) = at("customers.json");
    let (o_end, o_start) = at("consumption_records.json");
    let customers_rate = args.customers as f64 / (c_end - c_start).as_secs_f64();
    let orders_rate = args.orders as f64 / (o_end - o_start).as_secs_f64();

    let copy = match &app.pool {
        DbPool::Postgres(pool) => Some(copy_rates(pool, args.customers, args.orders).await?),
        DbPool::Sqlite(_) => None,
    };

    println!();
    println!(
        "| {} | rows | import (revisit) | PostgreSQL `COPY` from CSV | import / COPY |",
        backend.name()
    );
    println!("|---|---|---|---|---|");
    let row = |what: &str, n: usize, rate: f64, copy: Option<f64>| {
        let (c, pct) = match copy {
            Some(c) => (
                format!("{c:.0} rows/s"),
                format!("{:.0} %", rate / c * 100.0),
            ),
            None => ("—".into(), "—".into()),
        };
        println!("| {what} | {n} | {rate:.0} rows/s | {c} | {pct} |");
    };
    row(
        &format!("customers ({customers_mb:.0} MB)"),
        args.customers,
        customers_rate,
        copy.map(|c| c.0),
    );
    row(
        &format!("orders ({orders_mb:.0} MB)"),
        args.orders,
        orders_rate,
        copy.map(|c| c.1),
    );
    println!(
        "| whole import | {} files | {:.1} s | | |",
        files,
        started.elapsed().as_secs_f64()
    );
    match peak {
        Some(mb) => println!("| peak RSS of the process during the import | {mb:.0} MB | | | |"),
        None => println!("| peak RSS | not available on this system | | | |"),
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "revisit-bench-import-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    ));
    std::fs::create_dir_all(&dir).context("creating the benchmark folder")?;
    Ok(dir)
}

/// COPY of the same customer and order rows (as CSV) into tables with the same keys; rows/s.
async fn copy_rates(
    pool: &sqlx::PgPool,
    customers: usize,
    orders: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_copy_customers, bench_copy_orders;
         CREATE TABLE bench_copy_customers (code TEXT PRIMARY KEY, institution_id BIGINT NOT NULL,
             phone TEXT NOT NULL UNIQUE, name TEXT NOT NULL, gender TEXT, birthday DATE,
             vip_level TEXT, source TEXT, tags TEXT[], notes TEXT, opted_out BOOLEAN NOT NULL,
             content_hash TEXT NOT NULL);
         CREATE TABLE bench_copy_orders (institution_id BIGINT NOT NULL, order_number TEXT NOT NULL,
             customer_code TEXT NOT NULL, order_date DATE NOT NULL, total_amount_cents BIGINT NOT NULL,
             payment_method TEXT, status TEXT NOT NULL, items JSONB NOT NULL, content_hash TEXT NOT NULL,
             PRIMARY KEY (institution_id, order_number));",
    )
    .execute(&mut *conn)
    .await?;
    let hash = "0".repeat(64);
    let mut csv = Vec::with_capacity(customers * 260);
    for i in 0..customers {
        writeln!(
            csv,
            "{},1,{},{}{},女,19{:02}-{:02}-{:02},金卡,朋友推荐,\"{{{},{}}}\",皮肤较为敏感，注射类项目前需要皮试，术后注意防晒保湿，定期回访了解恢复情况。,f,{hash}",
            customer_code(i),
            phone(i),
            SURNAMES[i % 8],
            GIVEN[(i / 8) % 8],
            60 + i % 40,
            1 + i % 12,
            1 + i % 28,
            TAGS[i % 6],
            TAGS[(i + 1) % 6],
        )?;
    }
    let t = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY bench_copy_customers FROM STDIN WITH (FORMAT csv)")
        .await?;
    for part in csv.chunks(1 << 20) {
        copy.send(part).await?;
    }
    copy.finish().await?;
    let customers_rate = customers as f64 / t.elapsed().as_secs_f64();
    drop(csv);
    let mut csv = Vec::with_capacity(orders * 300);
    for i in 0..orders {
        writeln!(
            csv,
            "1,{INSTITUTION}-ORD-{i:08},{},2025-{:02}-{:02},{},微信支付,completed,\"[{{\"\"item_type\"\":\"\"project\"\",\"\"item_code\"\":\"\"PRJ-{:03}\"\",\"\"quantity\"\":1}}]\",{hash}",
            customer_code(i % customers.max(1)),
            1 + i % 12,
            1 + i % 28,
            100_000 + i % 1000,
            i % PROJECTS
        )?;
    }
    let t = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY bench_copy_orders FROM STDIN WITH (FORMAT csv)")
        .await?;
    for part in csv.chunks(1 << 20) {
        copy.send(part).await?;
    }
    copy.finish().await?;
    let orders_rate = orders as f64 / t.elapsed().as_secs_f64();
    sqlx::raw_sql("DROP TABLE bench_copy_customers, bench_copy_orders")
        .execute(&mut *conn)
        .await?;
    Ok((customers_rate, orders_rate))
}
