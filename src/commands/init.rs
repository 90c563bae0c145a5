//! `revisit init` and `revisit check`.

use crate::{
    config::{Settings, url_origin},
    handlers::run_checks,
    projections::{
        Projection,
        clickhouse::ClickhouseStore,
        graph::{GraphStore, nebula::NebulaGraph},
    },
    store,
};

pub async fn init(
    settings: &Settings,
    force: bool,
    yes: bool,
    skip_clickhouse: bool,
    skip_graph: bool,
) -> anyhow::Result<()> {
    let url = &settings.database.url;
    let name = store::database_name(url);
    if force {
        if !yes && !confirm_drop(&name)? {
            anyhow::bail!("未确认数据库名 {name}，init --force 已取消，没有做任何改动");
        }
        store::drop_database(url).await?;
        println!("🗑️  已删除数据库 {name}");
    }
    let created = store::create_if_missing(url).await?;
    store::open(settings).await?;
    if created {
        println!("✅ 已创建数据库 {name} 并完成迁移");
    } else {
        println!("✅ 数据库 {name} 已存在，迁移已是最新");
    }
    if settings.clickhouse.enabled() && !skip_clickhouse {
        let ch = ClickhouseStore::new(&settings.clickhouse);
        ch.init().await.map_err(|e| {
            anyhow::anyhow!(
                "无法连接 ClickHouse（{}）：{e:#}（请启动它，或运行 revisit init --skip-clickhouse）",
                url_origin(&settings.clickhouse.url)
            )
        })?;
        let db = store::open(settings).await?;
        db.repo
            .register_projection(revisit_jobs::ProjectionName::Clickhouse)
            .await?;
        println!(
            "✅ ClickHouse 初始化完成（库 {}）",
            settings.clickhouse.database
        );
    }
    if settings.graph.enabled && !settings.graph.nebula_addr.is_empty() && !skip_graph {
        let graph = NebulaGraph::new(&settings.graph)?;
        graph.init().await.map_err(|e| {
            anyhow::anyhow!(
                "无法连接 NebulaGraph（{}）：{e:#}（请启动它，或运行 revisit init --skip-graph）",
                settings.graph.nebula_addr
            )
        })?;
        println!(
            "✅ NebulaGraph 初始化完成（图空间 {}）",
            settings.graph.nebula_space
        );
    }
    Ok(())
}

/// Asks for the database name on a terminal; without one, the answer is no.
fn confirm_drop(name: &str) -> anyhow::Result<bool> {
    super::typed_at_terminal(
        &format!("⚠️  这将删除数据库 {name} 的全部数据！请输入数据库名确认："),
        name,
        &format!("⚠️  --force 会删除数据库 {name} 的全部数据。非交互环境请加 --yes 确认。"),
    )
}

pub async fn check(settings: &Settings) -> anyhow::Result<()> {
    let db = match store::open(settings).await {
        Ok(db) => db,
        Err(e) => {
            println!(
                "❌ {}: {}",
                settings.backend().name(),
                store::open_error_in_words(&e, &settings.database.url)
            );
            anyhow::bail!("系统检查未通过");
        }
    };
    let app = crate::app::App::new(db, settings.clone())?;
    let results = run_checks(&app).await;
    let mut failed = false;
    for r in &results {
        let mark = match r.ok {
            Some(true) => "✅",
            Some(false) => {
                failed = true;
                "❌"
            }
            None => "➖",
        };
        println!("{mark} {}: {}", r.name, r.detail);
    }
    if failed {
        anyhow::bail!("系统检查未通过");
    }
    Ok(())
}
