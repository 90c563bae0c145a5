//! What vector search answers: customers like a given one (same institution, with why), and a
//! text search of the catalogue. Library functions: the CLI prints them, the API serves them.

use serde::Serialize;
use serde_json::Value;

use super::{Collection, Hit, Vectors, documents, point_id};
use crate::{domain::snapshot::SearchProfile, store::Repository};

/// A customer found like another, and what they share.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SimilarCustomer {
    pub code: String,
    /// Their name, read from the primary store (the index holds none), for staff of their
    /// institution.
    pub name: String,
    /// Cosine similarity of the two customers' texts, 1 the same.
    pub score: f32,
    pub vip_level: Option<String>,
    /// Projects both bought.
    pub shared_projects: Vec<String>,
    pub shared_products: Vec<String>,
    pub shared_tags: Vec<String>,
    pub same_vip_level: bool,
}

/// A project or product found by text.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CatalogueHit {
    pub code: String,
    pub name: String,
    pub category: Option<String>,
    pub score: f32,
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("no customer has the code {0}")]
    UnknownCustomer(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn shared(mine: &[String], theirs: Vec<String>) -> Vec<String> {
    theirs.into_iter().filter(|t| mine.contains(t)).collect()
}

impl Vectors {
    /// Up to `limit` customers of the same institution most like the customer `code`, nearest
    /// first. The customer is read from the primary store (not from the index), so this works
    /// for one not synced yet. With `within`, a customer of another institution is unknown
    /// (and nothing is searched for them).
    pub async fn similar(
        &self,
        store: &dyn Repository,
        code: &str,
        within: Option<i64>,
        limit: usize,
    ) -> Result<(SearchProfile, Vec<SimilarCustomer>), SearchError> {
        let id = store
            .customer_id_of(code)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or_else(|| SearchError::UnknownCustomer(code.to_owned()))?;
        let me = store
            .search_profiles(&[id])
            .await
            .map_err(anyhow::Error::from)?
            .pop()
            .filter(|me| within.is_none_or(|inst| inst == me.institution_id))
            .ok_or_else(|| SearchError::UnknownCustomer(code.to_owned()))?;
        let doc = documents::customer(&me, 0);
        let vector = self.embed_one(doc.text).await?;
        let own = point_id(Collection::Customers, code);
        let hits = self
            .index
            .search(
                Collection::Customers,
                vector,
                Some(me.institution_id),
                limit + 1,
            )
            .await?;
        let mut out: Vec<SimilarCustomer> = hits
            .into_iter()
            .filter(|h| h.id != own)
            .take(limit)
            .map(|Hit { score, payload, .. }| {
                let vip_level = payload
                    .get("vip_level")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                SimilarCustomer {
                    code: payload
                        .get("code")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    name: String::new(),
                    score,
                    same_vip_level: vip_level.is_some() && vip_level == me.vip_level,
                    vip_level,
                    shared_projects: shared(&me.projects, strings(payload.get("projects"))),
                    shared_products: shared(&me.products, strings(payload.get("products"))),
                    shared_tags: shared(&me.tags, strings(payload.get("tags"))),
                }
            })
            .collect();
        let codes: Vec<String> = out.iter().map(|s| s.code.clone()).collect();
        let names: std::collections::HashMap<String, String> = store
            .customer_names(me.institution_id, &codes)
            .await
            .map_err(anyhow::Error::from)?
            .into_iter()
            .collect();
        for s in &mut out {
            s.name = names.get(&s.code).cloned().unwrap_or_default();
        }
        Ok((me, out))
    }

    /// Up to `limit` projects or products whose text is nearest `text`.
    pub async fn search_catalogue(
        &self,
        collection: Collection,
        text: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<CatalogueHit>> {
        anyhow::ensure!(
            collection != Collection::Customers,
            "customers are searched with `similar`"
        );
        let vector = self.embed_one(text.to_owned()).await?;
        // Unrelated items are left out (below), so more are asked for than are shown.
        let hits = self
            .index
            .search(collection, vector, None, (limit * 4).clamp(1, 200))
            .await?;
        let lexical = matches!(self.embedder, super::embed::Embedder::Lexical(_));
        let wanted: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        Ok(hits
            .into_iter()
            // A score of 0 or below shares nothing with the text. The offline embedder hashes
            // n-grams into few dimensions, so an unrelated item can score a little above 0:
            // with it, an item must share a character with the text to be an answer.
            .filter(|h| h.score > 1e-6)
            .filter(|h| {
                !lexical
                    || ["name", "category", "description", "brand", "specification"]
                        .iter()
                        .filter_map(|k| h.payload.get(*k).and_then(Value::as_str))
                        .any(|field| field.chars().any(|c| wanted.contains(&c)))
            })
            .take(limit)
            .map(|h| {
                let text = |k: &str| h.payload.get(k).and_then(Value::as_str).map(str::to_owned);
                CatalogueHit {
                    code: text("code").unwrap_or_default(),
                    name: text("name").unwrap_or_default(),
                    category: text("category"),
                    score: h.score,
                    status: text("status").unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn embed_one(&self, text: String) -> anyhow::Result<Vec<f32>> {
        self.embedder
            .embed(&[text])
            .await?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("the embedder returned no vector"))
    }
}
