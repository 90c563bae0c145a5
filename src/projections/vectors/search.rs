//! What vector search answers: customers like a given one (same institution, each with the
//! reasons that ranked them), and a text search of the catalogue. Library functions: the CLI
//! prints them, the API serves them. What "similar" means: docs/similar-customers.md.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::{
    Collection, Hit, Query, Vectors, documents,
    embed::Embedder,
    point_id,
    traits::{self, TRAITS_KEY, TraitKind},
};
use crate::{domain::snapshot::SearchProfile, store::Repository};

/// A customer found like another, and why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SimilarCustomer {
    pub code: String,
    /// Their name, read from the primary store (the index holds none), for staff of their
    /// institution.
    pub name: String,
    /// How alike: the sum of the reasons' weights; with an embeddings API configured, the
    /// fused rank score of the item traits and the text (docs/similar-customers.md).
    pub score: f32,
    pub vip_level: Option<String>,
    /// What both share, the strongest part of the score first.
    pub reasons: Vec<SimilarityReason>,
    /// Projects both had.
    pub shared_projects: Vec<String>,
    pub shared_products: Vec<String>,
    /// Doctors who treated both.
    pub shared_doctors: Vec<String>,
    pub shared_tags: Vec<String>,
    pub same_vip_level: bool,
}

/// One trait two customers share, and its part of the score.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SimilarityReason {
    pub kind: TraitKind,
    /// What staff read, in Chinese: 都由 王晓雯 医生做 玻尿酸填充.
    pub text: String,
    /// Its part of the structured score: the two customers' values of the trait times how rare
    /// the trait is (its inverse document frequency).
    pub weight: f32,
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

fn trait_keys(payload: &serde_json::Map<String, Value>) -> Vec<String> {
    payload
        .get(TRAITS_KEY)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How many candidates the item traits find for `limit` customers re-ranked by all traits:
/// twice as many, at least 20. On the planted-cohort evaluation (`revisit bench similar`) every
/// depth from 2 to 8 times gave the same precision; each point deeper costs the search a read of
/// its payload.
pub fn rerank_depth(limit: usize) -> usize {
    (2 * limit).clamp(20, 400)
}

impl Vectors {
    /// Up to `limit` customers of the same institution most like the customer `code`, most alike
    /// first, each with the traits both share, strongest first. The customer is read from the
    /// primary store (not from the index), so this works for one not synced yet. With `within`,
    /// a customer of another institution is unknown (and nothing is searched for them).
    pub async fn similar(
        &self,
        store: &dyn Repository,
        code: &str,
        within: Option<i64>,
        limit: usize,
    ) -> Result<(SearchProfile, Vec<SimilarCustomer>), SearchError> {
        let started = std::time::Instant::now();
        let me = store
            .search_profile_of(code)
            .await
            .map_err(anyhow::Error::from)?
            .filter(|me| within.is_none_or(|inst| inst == me.institution_id))
            .ok_or_else(|| SearchError::UnknownCustomer(code.to_owned()))?;
        let mine = traits::of(&me);
        let sparse = traits::sparse(&mine);
        if sparse.indices.is_empty() {
            // No project or product: nothing to be alike in.
            return Ok((me, Vec::new()));
        }
        let hybrid = matches!(self.embedder, Embedder::Remote(_));
        let (query, candidates) = if hybrid {
            // The fused rank is the answer: as many as are shown, each part ranked deeper.
            let dense = self.embed_one(documents::customer(&me, 0).text).await?;
            (
                Query::Hybrid {
                    dense,
                    traits: sparse,
                },
                limit + 1,
            )
        } else {
            // Those the index ranks first by the item traits, deep enough that the traits
            // added below reorder them but rarely bring in another (and one more: the customer).
            (Query::Traits(sparse), rerank_depth(limit) + 1)
        };
        let read = started.elapsed();
        // And every trait's rarity, as the index weighs it.
        let my_keys: Vec<String> = mine.iter().map(|t| t.key.clone()).collect();
        let own = point_id(Collection::Customers, code);
        let (hits, counts) = self
            .index
            .search_customers(query, me.institution_id, candidates, &my_keys)
            .await?;
        let hits = hits.into_iter().filter(|h| h.id != own && h.score > 0.0);
        let searched = started.elapsed();
        let idf: HashMap<&str, f32> = my_keys
            .iter()
            .zip(counts.each)
            .map(|(k, df)| (k.as_str(), traits::idf(counts.customers, df)))
            .collect();
        let my_norm = traits::norm(mine.iter().map(|t| t.kind));
        let mut out: Vec<SimilarCustomer> = hits
            .map(|Hit { score, payload, .. }| {
                let keys = trait_keys(&payload);
                let their_norm = traits::norm(keys.iter().filter_map(|k| TraitKind::of_key(k)));
                let have: HashSet<&str> = keys.iter().map(String::as_str).collect();
                let both: Vec<&traits::Trait> = mine
                    .iter()
                    .filter(|t| have.contains(t.key.as_str()))
                    .collect();
                let mut reasons: Vec<SimilarityReason> = both
                    .iter()
                    .map(|t| SimilarityReason {
                        kind: t.kind,
                        text: t.label.clone(),
                        weight: traits::value(t.kind, my_norm)
                            * traits::value(t.kind, their_norm)
                            * idf.get(t.key.as_str()).copied().unwrap_or_default(),
                    })
                    .collect();
                reasons.sort_by(|a, b| b.weight.total_cmp(&a.weight));
                // The names of what both share of one kind, each once.
                let named = |kind: TraitKind| -> Vec<String> {
                    let mut names: Vec<String> = Vec::new();
                    for t in both.iter().filter(|t| t.kind == kind) {
                        if !names.contains(&t.name) {
                            names.push(t.name.clone());
                        }
                    }
                    names
                };
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
                    // Without the text, the score is the reasons': the index's part (the item
                    // traits) and the re-ranking traits' on top. With it, the fused rank.
                    score: if hybrid {
                        score
                    } else {
                        reasons.iter().map(|r| r.weight).sum()
                    },
                    same_vip_level: vip_level.is_some() && vip_level == me.vip_level,
                    vip_level,
                    shared_projects: named(TraitKind::Project),
                    shared_products: named(TraitKind::Product),
                    shared_doctors: named(TraitKind::Doctor),
                    shared_tags: named(TraitKind::Tag),
                    reasons,
                }
            })
            .collect();
        if !hybrid {
            // Most alike first; equals in code order, the same on every engine.
            out.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then_with(|| a.code.cmp(&b.code))
            });
        }
        out.truncate(limit);
        let codes: Vec<String> = out.iter().map(|s| s.code.clone()).collect();
        let names: HashMap<String, String> = store
            .customer_names(me.institution_id, &codes)
            .await
            .map_err(anyhow::Error::from)?
            .into_iter()
            .map(|c| (c.code, c.name))
            .collect();
        for s in &mut out {
            s.name = names.get(&s.code).cloned().unwrap_or_default();
        }
        tracing::debug!(
            read_us = read.as_micros() as u64,
            search_us = (searched - read).as_micros() as u64,
            rest_us = (started.elapsed() - searched).as_micros() as u64,
            "similar customers timed"
        );
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
            .search(collection, vector.into(), None, (limit * 4).clamp(1, 200))
            .await?;
        let lexical = matches!(self.embedder, Embedder::Lexical(_));
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
