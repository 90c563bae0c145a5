//! What the relation graph answers, for staff: a customer's relations, the customers who share
//! their doctors or projects, and "customers who had X also had Y" within an institution.
//! Library functions: the CLI prints them, the API serves them. Customers and institutions are
//! looked up in the primary store, so an unknown code is told apart from one with no relations.

use revisit_jobs::EntityKind;

use super::{AlsoHad, Graph, Relation, SharedBy, Sharer, Vertex, VertexKind, known_vertices};
use crate::{domain::snapshot::Snapshots, store::Repository};

/// The deepest walk asked for: past 3 steps a walk reaches customers with nothing to do with
/// the one asked about.
pub const MAX_DEPTH: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("no customer has the code {0}")]
    UnknownCustomer(String),
    #[error("no institution has the code {0}")]
    UnknownInstitution(String),
    /// The item is in the primary store but not yet in the graph.
    #[error("no project or product has the code {0} in the graph")]
    UnknownItem(String),
    /// No project or product has this code or name at all.
    #[error("no project or product has the code or name {0}")]
    NoSuchItem(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<sqlx::Error> for GraphError {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl From<crate::store::StoreError> for GraphError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Failed(e.into())
    }
}

/// A customer's institution, from the primary store; with `within`, a customer of another
/// institution is unknown.
async fn institution_of(
    store: &dyn Repository,
    code: &str,
    within: Option<i64>,
) -> Result<i64, GraphError> {
    let unknown = || GraphError::UnknownCustomer(code.to_owned());
    let id = store.customer_id_of(code).await?.ok_or_else(unknown)?;
    let Snapshots::Customers(mut found) = store
        .snapshots(EntityKind::Customer, &[id.to_string()])
        .await?
    else {
        return Err(unknown());
    };
    let inst = found.pop().ok_or_else(unknown)?.institution_id;
    if within.is_some_and(|w| w != inst) {
        return Err(unknown());
    }
    Ok(inst)
}

impl Graph {
    /// The customer `code`'s relations to `depth` steps (1 to [`MAX_DEPTH`]): their
    /// institution, doctors, projects and products, their person and the same person's
    /// customers at other institutions of the chain, who referred them and whom they referred.
    pub async fn relations_of(
        &self,
        store: &dyn Repository,
        code: &str,
        within: Option<i64>,
        depth: u32,
    ) -> Result<Vec<Relation>, GraphError> {
        institution_of(store, code, within).await?;
        Ok(self
            .store
            .relations(&VertexKind::Customer.vid(code), depth.clamp(1, MAX_DEPTH))
            .await?)
    }

    /// Customers of the same institution who share `by` with the customer `code`, those who
    /// share most first.
    pub async fn shared_with(
        &self,
        store: &dyn Repository,
        code: &str,
        within: Option<i64>,
        by: SharedBy,
        limit: usize,
    ) -> Result<Vec<Sharer>, GraphError> {
        let inst = institution_of(store, code, within).await?;
        let rows = self
            .store
            .shared_with(&VertexKind::Customer.vid(code), inst, by, limit)
            .await?;
        let vids: Vec<String> = rows.iter().map(|(c, _)| c.clone()).collect();
        let known = known_vertices(self.store.as_ref(), &vids).await?;
        Ok(rows
            .into_iter()
            .map(|(vid, mut shared)| {
                shared.sort_unstable();
                shared.dedup();
                Sharer {
                    customer: Vertex::or_bare(&vid, known.get(&vid)),
                    shared,
                }
            })
            .collect())
    }

    /// Of the customers of `institution` who had the project or product `item`: how many, and
    /// what else they had there, the most common first.
    pub async fn also_had(
        &self,
        store: &dyn Repository,
        institution: &str,
        item: &str,
        limit: usize,
    ) -> Result<(i64, Vec<AlsoHad>), GraphError> {
        let inst = store
            .institution(institution)
            .await?
            .ok_or_else(|| GraphError::UnknownInstitution(institution.to_owned()))?;
        // Staff may type a name (补水) as well as a code (P001).
        let codes = store.item_codes(item).await?;
        if codes.is_empty() {
            return Err(GraphError::NoSuchItem(item.to_owned()));
        }
        let candidates: Vec<String> = codes
            .iter()
            .flat_map(|c| [VertexKind::Project.vid(c), VertexKind::Product.vid(c)])
            .collect();
        let found = self.store.vertices(&candidates).await?;
        let vid = candidates
            .iter()
            .find(|c| found.iter().any(|v| &v.vid == *c))
            .ok_or_else(|| GraphError::UnknownItem(item.to_owned()))?;
        let (total, rows) = self.store.also_had(vid, inst.id, limit).await?;
        let vids: Vec<String> = rows.iter().map(|(v, _)| v.clone()).collect();
        let known = known_vertices(self.store.as_ref(), &vids).await?;
        Ok((
            total,
            rows.into_iter()
                .map(|(vid, customers)| AlsoHad {
                    item: Vertex::or_bare(&vid, known.get(&vid)),
                    customers,
                })
                .collect(),
        ))
    }
}
