//! `revisit bench import`: the import of one large institution, measured.
//!
//! 1. Generates the files of one institution in the import layout: the common files, then
//!    `--customers` customers (~330 bytes each, so 300,000 make a ~100 MB file) and `--orders`
//!    orders of one to three items, written as a stream.
//! 2. Imports them through the real queue (an in-process `import.file` worker, as a daemon
//!    would), timing the customers file and the orders file, with the process's peak RSS
//!    reset before the import (`/proc/self/clear_refs`) so it measures the import alone.
//! 3. On PostgreSQL, loads the same rows as CSV with `COPY ... FROM STDIN` two ways, and
//!    prints the rates side by side: into copies of the tables the import writes (persons and
//!    customers, orders and their items, with the same indexes and foreign keys), and into one
//!    bare table per file with only the unique keys.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use revisit_jobs::{ImportFile, Job};

use crate::cli::BenchImportArgs;
use revisit::{
    app::App,
    config::Settings,
    queue::worker::InProcessPool,
    store::{self, DbPool},
};

pub(crate) const INSTITUTION: &str = "BENCH-001";
const PROJECTS: usize = 40;
const PRODUCTS: usize = 40;
const DOCTORS: usize = 12;

pub(crate) fn customer_code(i: usize) -> String {
    format!("{INSTITUTION}-C{i:07}")
}

fn phone(i: usize) -> String {
    format!("139{:08}", i)
}

const SURNAMES: [&str; 8] = ["张", "王", "李", "赵", "刘", "陈", "杨", "黄"];
const GIVEN: [&str; 8] = ["丽", "芳", "娜", "敏", "静", "婷", "欣然", "雨萱"];
const TAGS: [&str; 6] = ["敏感肌", "抗衰老", "油性皮肤", "补水", "轮廓管理", "祛斑"];

/// Writes the generated institution under `dir`.
pub(crate) fn generate(dir: &Path, customers: usize, orders: usize) -> anyhow::Result<()> {
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
        let c = generated_customer(i);
        writeln!(
            w,
            r#"{{"customer_code":"{}","person":{{"name":"{}","gender":"{GENDER}","birthday":"{}","phone":"{}"}},"vip_level":"{VIP}","source":"{SOURCE}","tags":["{}","{}"],"notes":"{NOTES}"}}{sep}"#,
            c.code, c.name, c.birthday, c.phone, c.tags[0], c.tags[1],
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
        let items = order_items(i);
        let total: usize = items.iter().map(|(_, _, price)| price).sum();
        let lines: Vec<String> = items
            .iter()
            .map(|(ty, code, price)| {
                format!(
                    r#"{{"item_type":"{ty}","item_code":"{code}","item_name":"名称","quantity":1,"unit_price":{price}.0,"discount":1.0,"actual_price":{price}.0,"doctor_code":"DOC-{:02}"}}"#,
                    i % DOCTORS
                )
            })
            .collect();
        let sep = if i + 1 < orders { "," } else { "" };
        writeln!(
            w,
            r#"{{"order_number":"{INSTITUTION}-ORD-{i:08}","customer_code":"{}","order_date":"{}","items":[{}],"total_amount":{total}.0,"payment_method":"微信支付","status":"completed"}}{sep}"#,
            customer_code(i % customers.max(1)),
            order_date(i),
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
    let (batch, files) = revisit::import::enqueue_plan(&app, &dir).await?;
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
    let whole_import = started.elapsed();
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
        DbPool::Postgres(pool) => {
            Some(copy_rates(pool, &app.settings, args.customers, args.orders).await?)
        }
        DbPool::Sqlite(_) => None,
    };

    println!();
    println!(
        "| {} | rows | import (revisit) | `COPY` into a fresh database's tables | import / that | `COPY` into copies of the tables | import / that | `COPY` into a bare table | import / that |",
        backend.name()
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let row = |what: &str, n: usize, rate: f64, copy: Option<(f64, f64, f64)>| {
        let cell = |c: Option<f64>| match c {
            Some(c) => (
                format!("{c:.0} rows/s"),
                format!("{:.0} %", rate / c * 100.0),
            ),
            None => ("—".into(), "—".into()),
        };
        let (psql, psql_pct) = cell(copy.map(|c| c.0));
        let (same, same_pct) = cell(copy.map(|c| c.1));
        let (bare, bare_pct) = cell(copy.map(|c| c.2));
        println!(
            "| {what} | {n} | {rate:.0} rows/s | {psql} | {psql_pct} | {same} | {same_pct} | {bare} | {bare_pct} |"
        );
    };
    row(
        &format!("customers ({customers_mb:.0} MB)"),
        args.customers,
        customers_rate,
        copy.map(|c| (c.fresh_database.0, c.same_tables.0, c.bare.0)),
    );
    row(
        &format!("orders ({orders_mb:.0} MB)"),
        args.orders,
        orders_rate,
        copy.map(|c| (c.fresh_database.1, c.same_tables.1, c.bare.1)),
    );
    println!(
        "| whole import | {} files | {:.1} s | | | | | | |",
        files,
        whole_import.as_secs_f64()
    );
    match peak {
        Some(mb) => {
            println!("| peak RSS of the process during the import | {mb:.0} MB | | | | | | | |")
        }
        None => println!("| peak RSS | not available on this system | | | | | | | |"),
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

pub(crate) fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "revisit-bench-import-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    ));
    std::fs::create_dir_all(&dir).context("creating the benchmark folder")?;
    Ok(dir)
}

/// Rows per second of `COPY ... FROM STDIN` (CSV) of the generated rows, two ways.
#[derive(Clone, Copy)]
struct CopyRates {
    /// The rows the import wrote, exported and loaded (as psql's `\copy` would) into the
    /// very tables of a fresh database made by the same migrations (partitions, indexes, foreign
    /// keys and change-capture triggers), a file's tables one after another. Rows/s per record
    /// of the file (a customer is a person and a customer row; an order its record and items).
    fresh_database: (f64, f64),
    /// Into copies of the tables the import writes (persons and customers; orders and their
    /// items), with the same indexes and foreign keys: the database's own floor for this schema.
    same_tables: (f64, f64),
    /// Into one bare table per file with only the unique keys (an order's items as JSON).
    bare: (f64, f64),
}

const GENDER: &str = "女";
const VIP: &str = "金卡";
const SOURCE: &str = "朋友推荐";
const NOTES: &str = "皮肤较为敏感，注射类项目前需要皮试，术后注意防晒保湿，定期回访了解恢复情况。";

/// What varies between generated customers; the rest is [`GENDER`], [`VIP`], [`SOURCE`] and
/// [`NOTES`].
struct GeneratedCustomer {
    code: String,
    phone: String,
    name: String,
    birthday: String,
    tags: [&'static str; 2],
}

fn generated_customer(i: usize) -> GeneratedCustomer {
    GeneratedCustomer {
        code: customer_code(i),
        phone: phone(i),
        name: format!("{}{}", SURNAMES[i % 8], GIVEN[(i / 8) % 8]),
        birthday: birthday(i),
        tags: [TAGS[i % 6], TAGS[(i + 1) % 6]],
    }
}

/// Customer `i`'s birthday: every day of the year about equally often (a birthday scan over
/// the generated customers meets as many people as it would in a real chain), years 1960-1999.
fn birthday(i: usize) -> String {
    let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date")
        + chrono::Days::new((i as u64 * 7919) % 365);
    format!("{}-{}", 1960 + i % 40, day.format("%m-%d"))
}

/// The order date of order `i`.
fn order_date(i: usize) -> String {
    format!("2025-{:02}-{:02}", 1 + i % 12, 1 + i % 28)
}

/// The items of order `i` as the generator wrote them: (type, code, price in yuan).
fn order_items(i: usize) -> Vec<(&'static str, String, usize)> {
    (0..1 + i % 3)
        .map(|n| {
            if n % 2 == 0 {
                let p = (i + n) % PROJECTS;
                ("project", format!("PRJ-{p:03}"), 1000 + p * 100)
            } else {
                let p = (i + n) % PRODUCTS;
                ("product", format!("PRD-{p:03}"), 100 + p * 10)
            }
        })
        .collect()
}

/// Sends `csv` through `COPY` and returns how long it took.
async fn copy_csv(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    csv: &[u8],
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut copy = conn.copy_in_raw(statement).await?;
    for part in csv.chunks(1 << 20) {
        copy.send(part).await?;
    }
    copy.finish().await?;
    Ok(t.elapsed())
}

/// Both `COPY` baselines of the generated rows.
async fn copy_rates(
    pool: &sqlx::PgPool,
    settings: &Settings,
    customers: usize,
    orders: usize,
) -> anyhow::Result<CopyRates> {
    let fresh_database = copy_into_fresh_database(pool, settings, customers, orders).await?;
    let mut conn = pool.acquire().await?;
    let institution: i64 = sqlx::query_scalar("SELECT id FROM institutions WHERE code = $1")
        .bind(INSTITUTION)
        .fetch_one(&mut *conn)
        .await?;
    let same_tables = copy_into_same_tables(&mut conn, institution, customers, orders).await?;
    let bare = copy_into_bare_tables(&mut conn, institution, customers, orders).await?;
    Ok(CopyRates {
        fresh_database,
        same_tables,
        bare,
    })
}

/// The columns `COPY` can write of `table` (generated ones are left out), in order.
async fn copy_columns(conn: &mut sqlx::PgConnection, table: &str) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar(
        "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position)
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = $1 AND is_generated = 'NEVER'",
    )
    .bind(table)
    .fetch_one(conn)
    .await?)
}

/// See [`CopyRates::fresh_database`]. The database is `<name>_copy`, dropped afterwards.
async fn copy_into_fresh_database(
    pool: &sqlx::PgPool,
    settings: &Settings,
    customers: usize,
    orders: usize,
) -> anyhow::Result<(f64, f64)> {
    let name = store::database_name(&settings.database.url);
    let url = settings
        .database
        .url
        .replacen(&format!("/{name}"), &format!("/{name}_copy"), 1);
    anyhow::ensure!(
        url != settings.database.url,
        "cannot name the copy's database"
    );
    let _ = store::drop_database(&url).await;
    store::create_if_missing(&url).await?;
    let mut fresh_settings = settings.clone();
    fresh_settings.database.url = url.clone();
    let fresh = store::open(&fresh_settings).await?;
    let DbPool::Postgres(fresh_pool) = &fresh.pool else {
        anyhow::bail!("the copy's database is not PostgreSQL");
    };
    let mut from = pool.acquire().await?;
    let mut to = fresh_pool.acquire().await?;
    let mut took = HashMap::new();
    for table in [
        "institutions",
        "persons",
        "customers",
        "consumption_records",
        "consumption_items",
    ] {
        let columns = copy_columns(&mut from, table).await?;
        let mut csv = Vec::new();
        {
            let mut out = from
                .copy_out_raw(&format!(
                    "COPY (SELECT {columns} FROM {table}) TO STDOUT WITH (FORMAT csv)"
                ))
                .await?;
            while let Some(part) = futures::StreamExt::next(&mut out).await {
                csv.extend_from_slice(&part?);
            }
        }
        // As when the rows are loaded by hand later: what the import left for the checkpointer
        // (a gigabyte of WAL on the default sizes) is written out before, not during, the copy.
        sqlx::raw_sql("CHECKPOINT").execute(&mut *to).await?;
        sqlx::raw_sql("CHECKPOINT").execute(&mut *from).await?;
        let statement = format!("COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)");
        took.insert(table, copy_csv(&mut to, &statement, &csv).await?);
    }
    drop((from, to));
    fresh_pool.close().await;
    drop(fresh);
    store::drop_database(&url).await?;
    let secs = |a: &str, b: &str| (took[a] + took[b]).as_secs_f64();
    Ok((
        customers as f64 / secs("persons", "customers"),
        orders as f64 / secs("consumption_records", "consumption_items"),
    ))
}

/// `COPY` into copies of the import's tables (schema `bench_copy`, dropped afterwards): the
/// same columns, indexes, checks and foreign keys, not partitioned. Ids are given in the CSV.
async fn copy_into_same_tables(
    conn: &mut sqlx::PgConnection,
    institution: i64,
    customers: usize,
    orders: usize,
) -> anyhow::Result<(f64, f64)> {
    const LIKE: &str =
        "INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS INCLUDING INDEXES";
    // Only constants are formatted in.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS bench_copy CASCADE;
         CREATE SCHEMA bench_copy;
         CREATE TABLE bench_copy.persons (LIKE public.persons {LIKE});
         CREATE TABLE bench_copy.customers (LIKE public.customers {LIKE},
             FOREIGN KEY (institution_id) REFERENCES public.institutions (id),
             FOREIGN KEY (person_id) REFERENCES bench_copy.persons (id));
         CREATE TABLE bench_copy.consumption_records (LIKE public.consumption_records {LIKE},
             FOREIGN KEY (institution_id) REFERENCES public.institutions (id),
             FOREIGN KEY (customer_id) REFERENCES bench_copy.customers (id));
         CREATE TABLE bench_copy.consumption_items (LIKE public.consumption_items {LIKE},
             FOREIGN KEY (institution_id, order_number)
                 REFERENCES bench_copy.consumption_records (institution_id, order_number)
                 ON DELETE CASCADE);"
    )))
    .execute(&mut *conn)
    .await?;
    let hash = "0".repeat(64);
    let (mut persons_csv, mut customers_csv) = (
        Vec::with_capacity(customers * 60),
        Vec::with_capacity(customers * 280),
    );
    for i in 0..customers {
        let c = generated_customer(i);
        let id = i + 1;
        writeln!(persons_csv, "{id},{},1", c.phone)?;
        writeln!(
            customers_csv,
            "{id},{},{institution},{id},{VIP},{SOURCE},\"{{{},{}}}\",{NOTES},f,{hash},1,{},{GENDER},{}",
            c.code, c.tags[0], c.tags[1], c.name, c.birthday
        )?;
    }
    let took = copy_csv(
        conn,
        "COPY bench_copy.persons (id, phone, source_seq)
         FROM STDIN WITH (FORMAT csv)",
        &persons_csv,
    )
    .await?
        + copy_csv(
            conn,
            "COPY bench_copy.customers (id, code, institution_id, person_id, vip_level, source,
                 tags, notes, opted_out, content_hash, source_seq, name, gender, birthday)
                 FROM STDIN WITH (FORMAT csv)",
            &customers_csv,
        )
        .await?;
    let customers_rate = customers as f64 / took.as_secs_f64();
    drop((persons_csv, customers_csv));

    let (mut records_csv, mut items_csv) = (
        Vec::with_capacity(orders * 120),
        Vec::with_capacity(orders * 160),
    );
    for i in 0..orders {
        let number = format!("{INSTITUTION}-ORD-{i:08}");
        let items = order_items(i);
        let total: usize = items.iter().map(|(_, _, p)| p * 100).sum();
        writeln!(
            records_csv,
            "{institution},{number},{},{},{total},微信支付,completed,{hash},1",
            i % customers.max(1) + 1,
            order_date(i),
        )?;
        for (n, (ty, code, price)) in items.iter().enumerate() {
            writeln!(
                items_csv,
                "{institution},{number},{},{ty},{code},名称,1,{},1.0,{},DOC-{:02}",
                n + 1,
                price * 100,
                price * 100,
                i % DOCTORS
            )?;
        }
    }
    let took = copy_csv(
        conn,
        "COPY bench_copy.consumption_records (institution_id, order_number, customer_id,
             order_date, total_amount_cents, payment_method, status, content_hash, source_seq)
         FROM STDIN WITH (FORMAT csv)",
        &records_csv,
    )
    .await?
        + copy_csv(
            conn,
            "COPY bench_copy.consumption_items (institution_id, order_number, line_no, item_type,
                 item_code, item_name, quantity, unit_price_cents, discount, actual_price_cents,
                 doctor_code) FROM STDIN WITH (FORMAT csv)",
            &items_csv,
        )
        .await?;
    let orders_rate = orders as f64 / took.as_secs_f64();
    sqlx::raw_sql("DROP SCHEMA bench_copy CASCADE")
        .execute(&mut *conn)
        .await?;
    Ok((customers_rate, orders_rate))
}

/// `COPY` into one bare table per file with only the unique keys: what loading the file's
/// rows costs when nothing else is kept (no person table, no items table, no foreign keys).
async fn copy_into_bare_tables(
    conn: &mut sqlx::PgConnection,
    institution: i64,
    customers: usize,
    orders: usize,
) -> anyhow::Result<(f64, f64)> {
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
        let c = generated_customer(i);
        writeln!(
            csv,
            "{},{institution},{},{},{GENDER},{},{VIP},{SOURCE},\"{{{},{}}}\",{NOTES},f,{hash}",
            c.code, c.phone, c.name, c.birthday, c.tags[0], c.tags[1]
        )?;
    }
    let took = copy_csv(
        conn,
        "COPY bench_copy_customers FROM STDIN WITH (FORMAT csv)",
        &csv,
    )
    .await?;
    let customers_rate = customers as f64 / took.as_secs_f64();
    drop(csv);
    let mut csv = Vec::with_capacity(orders * 400);
    for i in 0..orders {
        let items = order_items(i);
        let total: usize = items.iter().map(|(_, _, p)| p * 100).sum();
        let json: Vec<String> = items
            .iter()
            .map(|(ty, code, price)| {
                format!(
                    r#"{{""item_type"":""{ty}"",""item_code"":""{code}"",""item_name"":""名称"",""quantity"":1,""unit_price"":{price},""actual_price"":{price},""doctor_code"":""DOC-{:02}""}}"#,
                    i % DOCTORS
                )
            })
            .collect();
        writeln!(
            csv,
            "{institution},{INSTITUTION}-ORD-{i:08},{},{},{total},微信支付,completed,\"[{}]\",{hash}",
            customer_code(i % customers.max(1)),
            order_date(i),
            json.join(",")
        )?;
    }
    let took = copy_csv(
        conn,
        "COPY bench_copy_orders FROM STDIN WITH (FORMAT csv)",
        &csv,
    )
    .await?;
    let orders_rate = orders as f64 / took.as_secs_f64();
    sqlx::raw_sql("DROP TABLE bench_copy_customers, bench_copy_orders")
        .execute(&mut *conn)
        .await?;
    Ok((customers_rate, orders_rate))
}
