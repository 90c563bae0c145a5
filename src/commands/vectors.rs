//! `revisit similar <customer_code>` and `revisit search projects|products "<text>"`: vector
//! search from the command line, for staff (Chinese) or scripts (`--json`).

use std::sync::Arc;

use crate::{
    app::App,
    projections::vectors::{
        Collection, Vectors,
        search::{SearchError, SimilarityReason},
    },
};

fn vectors(app: &App) -> anyhow::Result<&Arc<Vectors>> {
    app.projections
        .vectors
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("向量检索已关闭（配置中 vectors.enabled = false）"))
}

/// Prints "empty index" advice when nothing was synced yet.
async fn warn_if_empty(v: &Vectors, c: Collection) -> anyhow::Result<()> {
    if v.index.count(c).await? == 0 {
        eprintln!(
            "⚠️  向量库中还没有{}：请先运行 `revisit sync vectors --full --wait`（需要运行中的 worker）",
            match c {
                Collection::Customers => "客户",
                Collection::Projects => "项目",
                Collection::Products => "产品",
            }
        );
    }
    Ok(())
}

pub async fn similar(app: &Arc<App>, code: &str, limit: usize, json: bool) -> anyhow::Result<()> {
    let v = vectors(app)?;
    let (me, mut found) = match v.similar(app.store.as_ref(), code, None, limit).await {
        Ok(r) => r,
        Err(SearchError::UnknownCustomer(c)) => anyhow::bail!("没有编号为 {c} 的客户"),
        Err(SearchError::Failed(e)) => return Err(e),
    };
    // Names masked, as in every list the CLI prints.
    for s in &mut found {
        s.name = crate::domain::privacy::mask_name(&s.name);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    warn_if_empty(v, Collection::Customers).await?;
    println!(
        "与 {} 相似的客户（同一机构；按共同的项目、医生、产品排序，越少见的越重要；会员等级：{}；项目：{}）",
        me.code,
        me.vip_level.as_deref().unwrap_or("无"),
        if me.projects.is_empty() {
            "无".to_owned()
        } else {
            me.projects.join("、")
        }
    );
    if found.is_empty() {
        println!("（没有找到）");
    }
    for (i, s) in found.iter().enumerate() {
        println!(
            "{:>3}. {} {}  相似度 {:.2}  {}",
            i + 1,
            s.code,
            s.name,
            s.score,
            reasons_in_words(&s.reasons, 4)
        );
    }
    Ok(())
}

/// The strongest `most` reasons, each with its share of the score, as staff read them.
pub fn reasons_in_words(reasons: &[SimilarityReason], most: usize) -> String {
    let total: f32 = reasons.iter().map(|r| r.weight).sum();
    if reasons.is_empty() || total <= 0.0 {
        return "文字描述相近（没有共同的项目、产品、医生或标签）".into();
    }
    let mut words: Vec<String> = reasons
        .iter()
        .take(most)
        .map(|r| format!("{}（{:.0}%）", r.text, r.weight / total * 100.0))
        .collect();
    if reasons.len() > most {
        words.push(format!("等 {} 项", reasons.len()));
    }
    words.join("；")
}

pub async fn search(
    app: &Arc<App>,
    collection: &str,
    text: &str,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let v = vectors(app)?;
    let c = match collection {
        "projects" => Collection::Projects,
        "products" => Collection::Products,
        other => anyhow::bail!("没有 {other:?} 这一类；可用：projects（项目）或 products（产品）"),
    };
    anyhow::ensure!(!text.trim().is_empty(), "请输入搜索文字");
    let found = v.search_catalogue(c, text, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    warn_if_empty(v, c).await?;
    println!(
        "与「{text}」相近的{}（按文字相似度排序）",
        if c == Collection::Projects {
            "项目"
        } else {
            "产品"
        }
    );
    if found.is_empty() {
        println!("（没有找到）");
    }
    for (i, h) in found.iter().enumerate() {
        println!(
            "{:>3}. {} {}（{}）相似度 {:.2}{}",
            i + 1,
            h.code,
            h.name,
            h.category.as_deref().unwrap_or("未分类"),
            h.score,
            if h.status == "active" {
                ""
            } else {
                "  已停用"
            }
        );
    }
    Ok(())
}
