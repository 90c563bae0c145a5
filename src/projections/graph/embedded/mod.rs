//! The embedded graph: vertex and edge tables in the primary store (`graph_vertices`,
//! `graph_edges`, `graph_owners`; see the `relation_graph` migration), written by sync jobs and
//! walked with recursive queries. No server: it runs wherever the primary store runs, SQLite or
//! PostgreSQL, each with SQL of its own in this folder.

mod postgres;
mod sqlite;

use std::collections::HashSet;

use async_trait::async_trait;

use super::{Edge, GraphSize, GraphStore, Owned, Relation, SharedBy, Vertex};
use crate::store::DbPool;

pub struct EmbeddedGraph {
    pool: DbPool,
}

impl EmbeddedGraph {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

/// Each edge once by its identity (kind, source, destination, rank), with its owner: one insert
/// cannot touch a row twice.
fn distinct_edges<'a>(owned: &[&'a Owned]) -> Vec<(&'a str, &'a Edge)> {
    let mut seen = HashSet::new();
    owned
        .iter()
        .flat_map(|o| o.edges.iter().map(move |e| (o.owner.as_str(), e)))
        .filter(|(_, e)| seen.insert((e.kind, e.src.as_str(), e.dst.as_str(), e.rank)))
        .collect()
}

/// The owned vertices and the shared ones (each once, and not one that is also owned here),
/// sorted by id: two jobs that insert the same person take its lock in the same order.
fn vertices_of<'a>(owned: &[&'a Owned]) -> (Vec<&'a Vertex>, Vec<&'a Vertex>) {
    let mut own: Vec<&Vertex> = owned.iter().filter_map(|o| o.vertex.as_ref()).collect();
    own.sort_by(|a, b| a.vid.cmp(&b.vid));
    let mine: HashSet<&str> = own.iter().map(|v| v.vid.as_str()).collect();
    let mut shared: Vec<&Vertex> = owned
        .iter()
        .flat_map(|o| o.shared.iter())
        .filter(|v| !mine.contains(v.vid.as_str()))
        .collect();
    shared.sort_by(|a, b| a.vid.cmp(&b.vid));
    shared.dedup_by(|a, b| a.vid == b.vid);
    (own, shared)
}

/// Owners sorted and each once: two jobs lock shared owners in the same order.
fn owner_ids(owned: &[Owned]) -> Vec<String> {
    let mut ids: Vec<String> = owned.iter().map(|o| o.owner.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[async_trait]
impl GraphStore for EmbeddedGraph {
    fn describe(&self) -> String {
        match self.pool {
            DbPool::Postgres(_) => "内嵌关系图，存于主库（PostgreSQL）".to_owned(),
            DbPool::Sqlite(_) => "内嵌关系图，存于主库（SQLite）".to_owned(),
        }
    }

    async fn version(&self) -> anyhow::Result<String> {
        Ok(match &self.pool {
            DbPool::Postgres(p) => sqlx::query_scalar("SHOW server_version")
                .fetch_one(p)
                .await
                .map(|v: String| format!("PostgreSQL {v}"))?,
            DbPool::Sqlite(p) => sqlx::query_scalar("SELECT sqlite_version()")
                .fetch_one(p)
                .await
                .map(|v: String| format!("SQLite {v}"))?,
        })
    }

    async fn init(&self) -> anyhow::Result<()> {
        // The migrations made the tables.
        Ok(())
    }

    async fn reset(&self) -> anyhow::Result<()> {
        match &self.pool {
            DbPool::Postgres(p) => {
                sqlx::query("TRUNCATE graph_edges, graph_vertices, graph_owners")
                    .execute(p)
                    .await?;
            }
            DbPool::Sqlite(p) => {
                let mut tx = crate::store::sqlite::begin_write(p).await?;
                for sql in [
                    "DELETE FROM graph_edges",
                    "DELETE FROM graph_vertices",
                    "DELETE FROM graph_owners",
                ] {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    async fn write(&self, owned: &[Owned], version: i64) -> anyhow::Result<()> {
        match &self.pool {
            DbPool::Postgres(p) => postgres::write(p, owned, version).await?,
            DbPool::Sqlite(p) => sqlite::write(p, owned, version).await?,
        }
        Ok(())
    }

    async fn size(&self) -> anyhow::Result<GraphSize> {
        let sql =
            "SELECT (SELECT count(*) FROM graph_vertices), (SELECT count(*) FROM graph_edges)";
        let (vertices, edges): (i64, i64) = match &self.pool {
            DbPool::Postgres(p) => sqlx::query_as(sql).fetch_one(p).await?,
            DbPool::Sqlite(p) => sqlx::query_as(sql).fetch_one(p).await?,
        };
        Ok(GraphSize {
            vertices: vertices as u64,
            edges: edges as u64,
        })
    }

    async fn vertices(&self, vids: &[String]) -> anyhow::Result<Vec<Vertex>> {
        Ok(match &self.pool {
            DbPool::Postgres(p) => postgres::vertices(p, vids).await?,
            DbPool::Sqlite(p) => sqlite::vertices(p, vids).await?,
        })
    }

    async fn relations(&self, start: &str, depth: u32) -> anyhow::Result<Vec<Relation>> {
        Ok(match &self.pool {
            DbPool::Postgres(p) => postgres::relations(p, start, depth).await?,
            DbPool::Sqlite(p) => sqlite::relations(p, start, depth).await?,
        })
    }

    async fn shared_with(
        &self,
        customer: &str,
        institution_id: i64,
        by: SharedBy,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, Vec<String>)>> {
        let letters: Vec<String> = by
            .kinds()
            .iter()
            .map(|k| format!("{}:", k.letter()))
            .collect();
        Ok(match &self.pool {
            DbPool::Postgres(p) => {
                postgres::shared_with(p, customer, institution_id, &letters, limit).await?
            }
            DbPool::Sqlite(p) => {
                sqlite::shared_with(p, customer, institution_id, &letters, limit).await?
            }
        })
    }

    async fn also_had(
        &self,
        item: &str,
        institution_id: i64,
        limit: usize,
    ) -> anyhow::Result<(i64, Vec<(String, i64)>)> {
        Ok(match &self.pool {
            DbPool::Postgres(p) => postgres::also_had(p, item, institution_id, limit).await?,
            DbPool::Sqlite(p) => sqlite::also_had(p, item, institution_id, limit).await?,
        })
    }
}

/// A relation row as both engines' walk returns it: depth, from, edge kind, forward, to, the
/// destination's kind, code, name, institution and detail (all null when it is not in the
/// graph), times, first and last date, amount.
type RelationRow = (
    i32,
    String,
    String,
    bool,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    Option<chrono::NaiveDate>,
    Option<chrono::NaiveDate>,
    Option<i64>,
);

fn relation_of(row: RelationRow) -> Option<Relation> {
    let (
        depth,
        from,
        edge,
        forward,
        to,
        kind,
        code,
        name,
        inst,
        detail,
        times,
        first,
        last,
        amount,
    ) = row;
    let found = match (kind.as_deref().and_then(super::VertexKind::parse), code) {
        (Some(kind), Some(code)) => Some(Vertex {
            vid: to.clone(),
            kind,
            code,
            name,
            institution_id: inst,
            detail,
        }),
        _ => None,
    };
    Some(Relation {
        depth: depth as u32,
        from,
        edge: super::EdgeKind::parse(&edge)?,
        forward,
        to: Vertex::or_bare(&to, found.as_ref()),
        times,
        first_date: first,
        last_date: last,
        amount_cents: amount,
    })
}

/// A vertex row: vid, kind, code, name, institution, detail.
type VertexRow = (
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn vertex_of((vid, kind, code, name, institution_id, detail): VertexRow) -> Option<Vertex> {
    Some(Vertex {
        vid,
        kind: super::VertexKind::parse(&kind)?,
        code,
        name,
        institution_id,
        detail,
    })
}
