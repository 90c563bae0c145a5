//! `revisit graph relations|shared|also-had`: the relation graph from the command line, for
//! staff (Chinese) or scripts (`--json`).

use std::sync::Arc;

use chrono::NaiveDate;

use crate::{
    app::App,
    cli::GraphCommand,
    projections::graph::{
        EdgeKind, Graph, Relation, SharedBy, Vertex, VertexKind, queries::GraphError,
    },
};

fn graph_of(app: &App) -> anyhow::Result<&Arc<Graph>> {
    app.projections
        .graph
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("关系图已关闭（配置中 graph.enabled = false）"))
}

fn in_chinese(e: GraphError) -> anyhow::Error {
    match e {
        GraphError::UnknownCustomer(c) => anyhow::anyhow!("没有编号为 {c} 的客户"),
        GraphError::UnknownInstitution(c) => anyhow::anyhow!("没有编号为 {c} 的机构"),
        GraphError::UnknownItem(c) => anyhow::anyhow!(
            "项目或产品 {c} 还没有同步到关系图：请运行 `revisit sync graph --wait`（需要运行中的 worker）"
        ),
        GraphError::NoSuchItem(c) => anyhow::anyhow!("没有编号或名称为 {c} 的项目或产品"),
        GraphError::Failed(e) => e,
    }
}

/// After an empty answer, says how to fill the graph if it is empty. Counted only then: on
/// PostgreSQL a count reads every edge, and on NebulaGraph it is a job of its own.
async fn warn_if_empty(g: &Graph) -> anyhow::Result<()> {
    if g.store.size().await?.vertices == 0 {
        eprintln!(
            "⚠️  关系图还是空的：请先运行 `revisit sync graph --full --wait`（需要运行中的 worker）"
        );
    }
    Ok(())
}

/// How staff read a vertex: its kind in Chinese, its name or code.
pub fn label(v: &Vertex) -> String {
    let kind = match v.kind {
        VertexKind::Institution => "机构",
        VertexKind::Person => "本人",
        VertexKind::Customer => "客户",
        VertexKind::Doctor => "医生",
        VertexKind::Project => "项目",
        VertexKind::Product => "产品",
    };
    match (&v.name, v.kind) {
        (_, VertexKind::Person) => kind.to_owned(),
        (Some(name), _) => format!("{kind} {name}（{}）", v.code),
        (None, _) => format!("{kind} {}", v.code),
    }
}

/// A relation in one line: what it is, and when and how much for purchases and doctors.
pub fn describe(r: &Relation) -> String {
    let what = match (r.edge, r.forward) {
        (EdgeKind::BelongsTo, _) => "所属",
        (EdgeKind::IsPerson, true) => "是",
        (EdgeKind::IsPerson, false) => "同一人的另一客户档案",
        (EdgeKind::ReferredBy, true) => "由其推荐",
        (EdgeKind::ReferredBy, false) => "推荐了",
        (EdgeKind::Bought, _) if r.to.kind == VertexKind::Product => "买过",
        (EdgeKind::Bought, _) => "做过",
        (EdgeKind::ServedBy, _) => "接诊医生",
    };
    let mut line = format!("{what} {}", label(&r.to));
    if r.to.kind == VertexKind::Customer
        && let Some(level) = &r.to.detail
    {
        line.push_str(&format!("，{level}"));
    }
    if matches!(r.edge, EdgeKind::Bought | EdgeKind::ServedBy) {
        let day = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        line.push_str(&format!("，{} 次", r.times));
        if r.first_date == r.last_date {
            line.push_str(&format!("，{}", day(r.last_date)));
        } else {
            line.push_str(&format!("，{} 至 {}", day(r.first_date), day(r.last_date)));
        }
        if let Some(a) = r.amount_cents {
            line.push_str(&format!("，共 ¥{}.{:02}", a / 100, a % 100));
        }
    }
    line
}

pub async fn graph(app: &Arc<App>, cmd: GraphCommand) -> anyhow::Result<()> {
    let g = graph_of(app)?;
    let store = app.store.as_ref();
    match cmd {
        GraphCommand::Relations {
            customer_code,
            depth,
            json,
        } => {
            let found = g
                .relations_of(store, &customer_code, None, depth)
                .await
                .map_err(in_chinese)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
                return Ok(());
            }
            println!("客户 {customer_code} 的关系（{depth} 步以内，由近及远）");
            if found.is_empty() {
                println!("（没有找到）");
                warn_if_empty(g).await?;
            }
            let start = VertexKind::Customer.vid(&customer_code);
            // The customer's own person is a step of the walk (to the same person's files at
            // other institutions), not something to tell staff.
            for r in found
                .iter()
                .filter(|r| !(r.edge == EdgeKind::IsPerson && r.forward && r.from == start))
            {
                let from = if r.from == start {
                    String::new()
                } else {
                    format!(
                        "经 {} ",
                        Vertex::bare(&r.from).map(|v| label(&v)).unwrap_or_default()
                    )
                };
                println!("  [{}] {from}{}", r.depth, describe(r));
            }
        }
        GraphCommand::Shared {
            customer_code,
            by,
            limit,
            json,
        } => {
            let by = SharedBy::parse(&by).unwrap_or(SharedBy::All);
            let found = g
                .shared_with(store, &customer_code, None, by, limit.into())
                .await
                .map_err(in_chinese)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
                return Ok(());
            }
            println!("与客户 {customer_code} 有相同医生、项目或产品的同机构客户（共同越多越靠前）");
            if found.is_empty() {
                println!("（没有找到）");
                warn_if_empty(g).await?;
            }
            let names = g.store.vertices(&shared_vids(&found)).await?;
            for (i, s) in found.iter().enumerate() {
                let shared: Vec<String> = s
                    .shared
                    .iter()
                    .map(|vid| {
                        names
                            .iter()
                            .find(|v| &v.vid == vid)
                            .cloned()
                            .or_else(|| Vertex::bare(vid))
                            .map(|v| label(&v))
                            .unwrap_or_else(|| vid.clone())
                    })
                    .collect();
                println!(
                    "{:>3}. {}  共同 {} 项：{}",
                    i + 1,
                    s.customer.code,
                    shared.len(),
                    shared.join("、")
                );
            }
        }
        GraphCommand::AlsoHad {
            institution_code,
            item_code,
            limit,
            json,
        } => {
            let (total, found) = g
                .also_had(store, &institution_code, &item_code, limit.into())
                .await
                .map_err(in_chinese)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "customers": total,
                        "also_had": found,
                    }))?
                );
                return Ok(());
            }
            println!(
                "{institution_code} 做过/买过 {item_code} 的客户共 {total} 位，他们在本机构还做过/买过："
            );
            if found.is_empty() {
                println!("（没有）");
            }
            for (i, a) in found.iter().enumerate() {
                let share = if total > 0 {
                    a.customers as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                println!(
                    "{:>3}. {}  {} 位（{share:.1}%）",
                    i + 1,
                    label(&a.item),
                    a.customers
                );
            }
        }
    }
    Ok(())
}

fn shared_vids(found: &[crate::projections::graph::Sharer]) -> Vec<String> {
    let mut vids: Vec<String> = found
        .iter()
        .flat_map(|s| s.shared.iter().cloned())
        .collect();
    vids.sort_unstable();
    vids.dedup();
    vids
}
