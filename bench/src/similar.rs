//! `revisit bench similar`: how meaningful "similar customers" is, measured on planted cohorts.
//!
//! One institution whose customers come in groups: each group has three projects, a product and
//! a doctor of its own choosing (with `--any-doctor`, any doctor treats each line; groups may
//! overlap by chance, as real ones do); tags, VIP levels,
//! common care notes and up to `--noise-items` other treatments (any project, any doctor) are
//! drawn at random for every customer, as noise. The data is imported
//! and synced into vector search as in production, then every customer's five most similar are
//! asked for: precision@5 is the share of them that come from the customer's own group.
//! A scratch SQLite database and vector folder of its own, removed afterwards; the same seed
//! gives the same data.

use std::{collections::HashMap, path::Path, time::Instant};

use anyhow::Context;
use revisit_jobs::ProjectionName;
use serde_json::Value;

use crate::cli::BenchSimilarArgs;
use crate::vectors::{full_resync, import_generated};
use revisit::{app::App, config::Settings, store};

const INSTITUTION: &str = "EV-001";
const K: usize = 5;

const PROJECTS: [&str; 24] = [
    "水光针",
    "光子嫩肤",
    "热玛吉",
    "超声刀",
    "玻尿酸填充",
    "肉毒素除皱",
    "果酸焕肤",
    "皮秒祛斑",
    "线雕提升",
    "埋线双眼皮",
    "隆鼻",
    "吸脂塑形",
    "脱毛",
    "小气泡清洁",
    "微针",
    "黄金微针",
    "点阵激光",
    "嗨体颈纹",
    "胶原蛋白注射",
    "溶脂针",
    "瘦脸针",
    "自体脂肪填充",
    "祛痘疗程",
    "眼周抗衰",
];
const PRODUCTS: [&str; 12] = [
    "医用修护面膜",
    "玻尿酸精华液",
    "防晒乳",
    "修护霜",
    "美白精华",
    "舒缓喷雾",
    "眼霜",
    "胶原蛋白饮",
    "洁面乳",
    "祛痘凝胶",
    "颈霜",
    "身体乳",
];
const DOCTORS: [&str; 10] = [
    "李明",
    "王晓雯",
    "赵静",
    "陈思",
    "刘洋",
    "周婷",
    "吴昊",
    "郑雪",
    "孙丽",
    "钱程",
];
const TAGS: [&str; 12] = [
    "敏感肌",
    "干性皮肤",
    "油性皮肤",
    "痘肌",
    "美白",
    "补水",
    "抗衰",
    "轮廓管理",
    "术后修复",
    "价格敏感",
    "高消费",
    "老客户",
];
const VIP: [&str; 4] = ["普通会员", "银卡", "金卡", "钻石卡"];
const NOTES: [&str; 4] = [
    "曾有轻微过敏史，注射前需皮试",
    "偏好自然效果",
    "怕痛，需提前敷麻",
    "工作日晚上方便到店",
];

pub async fn run(mut settings: Settings, args: BenchSimilarArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.cohorts >= 2 && args.per_cohort > K,
        "need at least 2 groups of more than {K} customers"
    );
    settings.cron.enabled = false;
    settings.clickhouse.url = String::new();
    // The relation graph's sync jobs would share the queue with the measured ones.
    settings.graph.enabled = false;
    settings.vectors.enabled = true;
    settings.vectors.url = String::new();
    settings.app.institutions = vec![INSTITUTION.to_owned()];
    let dir = crate::import::tempfile_dir()?;
    settings.vectors.dir = dir.join("vectors").display().to_string();
    settings.database.url = format!("sqlite://{}", dir.join("bench.db").display());
    println!(
        "相似客户评估 similar-customer evaluation: {} groups of {} customers, up to {} other treatments each, {} (seed {}), {} dimensions, under {}",
        args.cohorts,
        args.per_cohort,
        args.noise_items,
        if args.any_doctor {
            "group treatments by any doctor"
        } else {
            "each group with a doctor of its own"
        },
        args.seed,
        settings.vectors.dimension,
        dir.display()
    );
    let data = dir.join("data");
    let truth = planted_cohorts(
        &data,
        args.cohorts,
        args.per_cohort,
        args.noise_items,
        args.any_doctor,
        args.seed,
    )?;
    store::create_if_missing(&settings.database.url).await?;
    let app = App::new(store::open(&settings).await?, settings)?;
    import_generated(&app, &data).await?;
    let (_, took) = full_resync(&app, ProjectionName::Vectors).await?;
    println!(
        "   synced into vector search in {:.1} s",
        took.as_secs_f64()
    );
    let t = Instant::now();
    let precision = precision_at_k(&app, &truth).await?;
    println!(
        "   precision@{K}: {precision:.3} over {} customers ({:.1} ms a search)",
        truth.len(),
        t.elapsed().as_secs_f64() * 1000.0 / truth.len() as f64
    );
    // The data comes back from the seed: nothing of it is worth keeping.
    drop(app);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// Writes the institution's files under `dir` (the import layout); returns each customer's
/// group.
pub(crate) fn planted_cohorts(
    dir: &Path,
    cohorts: usize,
    per_cohort: usize,
    noise_items: usize,
    any_doctor: bool,
    seed: u64,
) -> anyhow::Result<HashMap<String, usize>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let common = dir.join("common");
    let inst = dir.join("institutions").join(INSTITUTION);
    std::fs::create_dir_all(&common)?;
    std::fs::create_dir_all(&inst)?;
    let json = |v: Value| serde_json::to_vec(&v).expect("json");
    std::fs::write(
        common.join("institutions.json"),
        json(serde_json::json!([{"institution_code": INSTITUTION, "name": "评估医疗美容门诊部"}])),
    )?;
    // A catalogue file: one row per name, its code from its place in the list.
    let catalogue = |file: &str, names: &[&str], row: &dyn Fn(usize, &str) -> Value| {
        let rows: Vec<Value> = names.iter().enumerate().map(|(i, n)| row(i, n)).collect();
        std::fs::write(common.join(file), json(rows.into()))
    };
    catalogue("projects.json", &PROJECTS, &|i, name| {
        serde_json::json!({"project_code": format!("EP-{i:02}"), "name": name,
            "standard_price": 1000.0})
    })?;
    catalogue(
        "products.json",
        &PRODUCTS,
        &|i, name| serde_json::json!({"product_code": format!("EG-{i:02}"), "name": name, "price": 100.0}),
    )?;
    catalogue("doctors.json", &DOCTORS, &|i, name| {
        serde_json::json!({"doctor_code": format!("ED-{i:02}"), "name": name,
            "institution_code": INSTITUTION})
    })?;
    let mut truth = HashMap::new();
    let mut customers = Vec::new();
    let mut orders = Vec::new();
    for group in 0..cohorts {
        let mut projects: Vec<usize> = (0..PROJECTS.len()).collect();
        rng.shuffle(&mut projects);
        let projects = &projects[..3];
        let product = rng.usize(..PRODUCTS.len());
        let doctor = rng.usize(..DOCTORS.len());
        for n in 0..per_cohort {
            let code = format!("{INSTITUTION}-C{group:03}{n:03}");
            let mut tags: Vec<&str> = TAGS.to_vec();
            rng.shuffle(&mut tags);
            customers.push(serde_json::json!({
                "customer_code": code,
                "person": {"name": format!("客户{group}-{n}"), "gender": "女",
                    "phone": format!("139{:08}", group * 1000 + n)},
                "vip_level": VIP[rng.usize(..VIP.len())],
                "tags": &tags[..rng.usize(2..6)],
                "notes": NOTES[rng.usize(..NOTES.len())],
            }));
            let items: Vec<Value> = projects
                .iter()
                .map(|p| {
                    let doctor = if any_doctor {
                        rng.usize(..DOCTORS.len())
                    } else {
                        doctor
                    };
                    project_item(*p, doctor)
                })
                .chain(std::iter::once(serde_json::json!({"item_type": "product",
                    "item_code": format!("EG-{product:02}"), "item_name": PRODUCTS[product],
                    "quantity": 1, "unit_price": 100.0, "actual_price": 100.0})))
                .collect();
            orders.push(serde_json::json!({
                "order_number": format!("{code}-O1"), "customer_code": code,
                "order_date": "2026-03-01", "total_amount": 3100.0, "status": "completed",
                "items": items,
            }));
            // Noise: what this customer also had, outside the group's, with any doctor.
            let extra: Vec<Value> = (0..rng.usize(..=noise_items))
                .map(|_| project_item(rng.usize(..PROJECTS.len()), rng.usize(..DOCTORS.len())))
                .collect();
            if !extra.is_empty() {
                orders.push(serde_json::json!({
                    "order_number": format!("{code}-O2"), "customer_code": code,
                    "order_date": "2026-04-01", "total_amount": 1000.0 * extra.len() as f64,
                    "status": "completed", "items": extra,
                }));
            }
            truth.insert(code, group);
        }
    }
    std::fs::write(inst.join("customers.json"), json(customers.into()))?;
    std::fs::write(inst.join("consumption_records.json"), json(orders.into()))?;
    Ok(truth)
}

/// An order line: project `p` (¥1,000) by doctor `doctor`.
fn project_item(p: usize, doctor: usize) -> Value {
    serde_json::json!({"item_type": "project", "item_code": format!("EP-{p:02}"),
        "item_name": PROJECTS[p], "quantity": 1, "unit_price": 1000.0, "actual_price": 1000.0,
        "doctor_code": format!("ED-{doctor:02}")})
}

/// The share of each customer's `K` most similar that are of their own group, over all.
pub(crate) async fn precision_at_k(
    app: &App,
    truth: &HashMap<String, usize>,
) -> anyhow::Result<f64> {
    let vectors = app.projections.vectors.as_ref().context("vectors are on")?;
    let (mut hits, mut asked) = (0usize, 0usize);
    for (code, group) in truth {
        let (_, found) = vectors
            .similar(app.store.as_ref(), code, None, K)
            .await
            .map_err(|e| anyhow::anyhow!("similar {code}: {e}"))?;
        asked += K;
        hits += found
            .iter()
            .filter(|s| truth.get(&s.code) == Some(group))
            .count();
    }
    Ok(hits as f64 / asked as f64)
}
