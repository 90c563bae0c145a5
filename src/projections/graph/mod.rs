//! The relation graph: institutions, persons, customers, doctors, projects and products, and
//! the relations between them, for staff's questions ("who else did this doctor treat?",
//! "customers who had X also had Y"). Greetings never read it: a recommendation in a greeting is
//! an advertisement.
//!
//! One trait, [`GraphStore`], with two engines: the embedded graph ([`embedded::EmbeddedGraph`],
//! vertex and edge tables in the primary store, walked with recursive queries on SQLite and
//! PostgreSQL alike) as the default, and NebulaGraph ([`nebula::NebulaGraph`]) when
//! `graph.nebula_addr` is set. Both take the same vertex ids and the same edges ([`facts`]),
//! written by `projection.sync` jobs like the other projections.
//!
//! Vertex ids are `<letter>:<key>`: `i:<institution id>`, `p:<person id>`, `c:<customer code>`,
//! `d:<doctor code>`, `j:<project code>`, `g:<product code>`. Edges:
//!
//! | edge | from → to | carries |
//! |---|---|---|
//! | `belongs_to` | customer → institution | |
//! | `is_person` | customer → person | |
//! | `referred_by` | customer → customer (its `referrer_code`) | |
//! | `bought` | customer → project or product, one per order line | date, amount, institution |
//! | `served_by` | customer → doctor, one per order and doctor | date, amount, institution |
//!
//! Customers and persons carry codes only, never a name or a phone number.

pub mod embedded;
pub mod facts;
pub mod nebula;
pub mod queries;
mod sync;

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Serialize;

use crate::{config::GraphSettings, store::DbPool};

/// The relation graph as the application uses it.
#[derive(Clone)]
pub struct Graph {
    pub store: Arc<dyn GraphStore>,
}

impl Graph {
    /// NebulaGraph when `graph.nebula_addr` is set, else the embedded graph on `pool`.
    pub fn from_settings(s: &GraphSettings, pool: &DbPool) -> anyhow::Result<Self> {
        let store: Arc<dyn GraphStore> = if s.nebula_addr.is_empty() {
            Arc::new(embedded::EmbeddedGraph::new(pool.clone()))
        } else {
            Arc::new(nebula::NebulaGraph::new(s)?)
        };
        Ok(Self { store })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VertexKind {
    Institution,
    Person,
    Customer,
    Doctor,
    Project,
    Product,
}

impl VertexKind {
    pub const ALL: [VertexKind; 6] = [
        Self::Institution,
        Self::Person,
        Self::Customer,
        Self::Doctor,
        Self::Project,
        Self::Product,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Institution => "institution",
            Self::Person => "person",
            Self::Customer => "customer",
            Self::Doctor => "doctor",
            Self::Project => "project",
            Self::Product => "product",
        }
    }

    /// The letter before a vertex id's colon.
    pub fn letter(self) -> char {
        match self {
            Self::Institution => 'i',
            Self::Person => 'p',
            Self::Customer => 'c',
            Self::Doctor => 'd',
            Self::Project => 'j',
            Self::Product => 'g',
        }
    }

    /// The vertex id of the entity of this kind with `key` (a code, or an id for institutions
    /// and persons).
    pub fn vid(self, key: impl std::fmt::Display) -> String {
        format!("{}:{key}", self.letter())
    }

    /// The kind and key of a vertex id; `None` when it is not one.
    pub fn of_vid(vid: &str) -> Option<(Self, &str)> {
        let (letter, key) = vid.split_once(':')?;
        let mut chars = letter.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return None;
        };
        Self::ALL
            .into_iter()
            .find(|k| k.letter() == c)
            .map(|k| (k, key))
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    BelongsTo,
    IsPerson,
    ReferredBy,
    Bought,
    ServedBy,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 5] = [
        Self::BelongsTo,
        Self::IsPerson,
        Self::ReferredBy,
        Self::Bought,
        Self::ServedBy,
    ];
    /// The edges a walk goes along, both ways: they join customers and persons.
    pub const WALKED: [EdgeKind; 2] = [Self::IsPerson, Self::ReferredBy];
    /// The edges a walk ends with: to institutions, doctors, projects and products, which it
    /// does not go through (each joins thousands of customers).
    pub const LEAVES: [EdgeKind; 3] = [Self::BelongsTo, Self::Bought, Self::ServedBy];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BelongsTo => "belongs_to",
            Self::IsPerson => "is_person",
            Self::ReferredBy => "referred_by",
            Self::Bought => "bought",
            Self::ServedBy => "served_by",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A vertex and what it shows: codes and catalogue names, never a person's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Vertex {
    pub vid: String,
    pub kind: VertexKind,
    pub code: String,
    /// Institutions, doctors, projects and products.
    pub name: Option<String>,
    /// Customers' and doctors' institution.
    pub institution_id: Option<i64>,
    /// A customer's VIP level, a doctor's title, a project's category, a product's brand or
    /// category.
    pub detail: Option<String>,
}

impl Vertex {
    /// What is known of a vertex id whose vertex is not (yet) in the graph: a referrer not
    /// imported yet.
    pub fn bare(vid: &str) -> Option<Self> {
        let (kind, key) = VertexKind::of_vid(vid)?;
        Some(Self {
            vid: vid.to_owned(),
            kind,
            code: key.to_owned(),
            name: None,
            institution_id: None,
            detail: None,
        })
    }

    /// `found`, else what the id tells ([`Vertex::bare`]), else the id as a customer's code.
    pub fn or_bare(vid: &str, found: Option<&Vertex>) -> Self {
        found
            .cloned()
            .or_else(|| Self::bare(vid))
            .unwrap_or_else(|| Self {
                vid: vid.to_owned(),
                kind: VertexKind::Customer,
                code: vid.to_owned(),
                name: None,
                institution_id: None,
                detail: None,
            })
    }
}

/// What `store` knows of these vertex ids, by id.
pub async fn known_vertices(
    store: &(impl GraphStore + ?Sized),
    vids: &[String],
) -> anyhow::Result<HashMap<String, Vertex>> {
    Ok(store
        .vertices(vids)
        .await?
        .into_iter()
        .map(|v| (v.vid.clone(), v))
        .collect())
}

/// An edge `src -kind-> dst`; `rank` tells apart edges of one kind between the same vertices
/// (the lines of different orders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub kind: EdgeKind,
    pub src: String,
    pub dst: String,
    pub rank: i64,
    pub institution_id: Option<i64>,
    pub on_date: Option<NaiveDate>,
    pub amount_cents: Option<i64>,
}

/// What one entity's snapshot writes: its own vertex (none for an order), and its edges, which
/// replace every edge it wrote before. `shared` are vertices it names that no entity owns (a
/// person, known only by its customers): written if missing, never removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// A customer's vertex id, `o:<order key>`, or the vertex id of an entity without edges.
    pub owner: String,
    pub vertex: Option<Vertex>,
    pub edges: Vec<Edge>,
    pub shared: Vec<Vertex>,
}

/// One relation a walk found: `from -edge-> to` (or `to -edge-> from` when not `forward`),
/// `depth` steps from where it started, with every edge of that kind between the two folded
/// into one (how many, first and last date, total amount).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Relation {
    pub depth: u32,
    pub from: String,
    pub edge: EdgeKind,
    /// False: the edge points at `from` (a customer `from` referred, a customer of the person).
    pub forward: bool,
    pub to: Vertex,
    pub times: i64,
    pub first_date: Option<NaiveDate>,
    pub last_date: Option<NaiveDate>,
    pub amount_cents: Option<i64>,
}

/// A customer who shares doctors, projects or products with another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Sharer {
    pub customer: Vertex,
    /// Vertex ids of what they share.
    pub shared: Vec<String>,
}

/// "Customers who had X also had Y": one Y.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlsoHad {
    pub item: Vertex,
    /// Customers of the institution who had both.
    pub customers: i64,
}

/// What a shared-with query follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SharedBy {
    Doctors,
    Projects,
    Products,
    All,
}

impl SharedBy {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "doctor" | "doctors" => Some(Self::Doctors),
            "project" | "projects" => Some(Self::Projects),
            "product" | "products" => Some(Self::Products),
            "all" | "any" => Some(Self::All),
            _ => None,
        }
    }

    /// The kinds of the vertices shared.
    pub fn kinds(self) -> &'static [VertexKind] {
        match self {
            Self::Doctors => &[VertexKind::Doctor],
            Self::Projects => &[VertexKind::Project],
            Self::Products => &[VertexKind::Product],
            Self::All => &[VertexKind::Doctor, VertexKind::Project, VertexKind::Product],
        }
    }
}

/// How large the graph is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GraphSize {
    pub vertices: u64,
    pub edges: u64,
}

#[async_trait]
pub trait GraphStore: Send + Sync {
    /// Where the graph lives, for `revisit check` and messages.
    fn describe(&self) -> String;
    /// Server version (or the primary store's engine).
    async fn version(&self) -> anyhow::Result<String>;
    /// Creates what is missing (NebulaGraph's space, tags and edge types); idempotent.
    async fn init(&self) -> anyhow::Result<()>;
    /// Empties the graph, before a full rebuild.
    async fn reset(&self) -> anyhow::Result<()>;
    /// Writes what these entities own with `version`: an owner written with a higher version
    /// is left alone; otherwise its vertex is replaced and its edges replace the ones it had.
    async fn write(&self, owned: &[Owned], version: i64) -> anyhow::Result<()>;
    async fn size(&self) -> anyhow::Result<GraphSize>;
    async fn vertices(&self, vids: &[String]) -> anyhow::Result<Vec<Vertex>>;
    /// The relations of `start` to `depth` steps: along `is_person` and `referred_by` both
    /// ways (through customers and persons), and at every customer reached before the last
    /// step, its `belongs_to`, `bought` and `served_by` edges. Nearest first.
    async fn relations(&self, start: &str, depth: u32) -> anyhow::Result<Vec<Relation>>;
    /// Other customers of `institution_id` who share `by` with the customer `customer`, those
    /// who share most first: each one's vertex id and the ids of what they share.
    async fn shared_with(
        &self,
        customer: &str,
        institution_id: i64,
        by: SharedBy,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, Vec<String>)>>;
    /// How many customers of `institution_id` bought `item`, and the other projects and
    /// products those customers bought there (vertex id, customers), the most common first.
    async fn also_had(
        &self,
        item: &str,
        institution_id: i64,
        limit: usize,
    ) -> anyhow::Result<(i64, Vec<(String, i64)>)>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vertex_ids_round_trip() {
        for kind in VertexKind::ALL {
            let vid = kind.vid("BJ-01:x");
            assert_eq!(VertexKind::of_vid(&vid), Some((kind, "BJ-01:x")));
            assert_eq!(VertexKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(VertexKind::of_vid("x:1"), None);
        assert_eq!(VertexKind::of_vid("cc:1"), None);
        assert_eq!(VertexKind::of_vid("c1"), None);
        for kind in EdgeKind::ALL {
            assert_eq!(EdgeKind::parse(kind.as_str()), Some(kind));
        }
    }
}
