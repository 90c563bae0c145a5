//! The embedded graph's SQL on SQLite: one write transaction a batch (`BEGIN IMMEDIATE`, as
//! every writer of the store), a statement a row, each cached prepared.

use std::collections::HashSet;

use sqlx::SqlitePool;

use super::{
    RelationRow, VertexRow, distinct_edges, owner_ids, relation_of, vertex_of, vertices_of,
};
use crate::{
    projections::graph::{Owned, Relation, Vertex},
    store::{StoreResult, sqlite::begin_write},
};

pub async fn write(pool: &SqlitePool, owned: &[Owned], version: i64) -> StoreResult<()> {
    let mut tx = begin_write(pool).await?;
    let mut claimed = HashSet::new();
    for owner in owner_ids(owned) {
        let won: Option<String> = sqlx::query_scalar(
            "INSERT INTO graph_owners (owner, version) VALUES (?1, ?2)
             ON CONFLICT (owner) DO UPDATE SET version = excluded.version
             WHERE graph_owners.version <= excluded.version
             RETURNING owner",
        )
        .bind(&owner)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(owner) = won {
            sqlx::query("DELETE FROM graph_edges WHERE owner = ?1")
                .bind(&owner)
                .execute(&mut *tx)
                .await?;
            claimed.insert(owner);
        }
    }
    let kept: Vec<&Owned> = owned
        .iter()
        .filter(|o| claimed.contains(&o.owner))
        .collect();
    let (own, shared) = vertices_of(&kept);
    for (vertices, replace) in [(own, true), (shared, false)] {
        let sql = if replace {
            "INSERT INTO graph_vertices (vid, kind, code, name, institution_id, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (vid) DO UPDATE SET kind = excluded.kind, code = excluded.code,
                 name = excluded.name, institution_id = excluded.institution_id,
                 detail = excluded.detail"
        } else {
            "INSERT INTO graph_vertices (vid, kind, code, name, institution_id, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (vid) DO NOTHING"
        };
        for v in vertices {
            sqlx::query(sql)
                .bind(&v.vid)
                .bind(v.kind.as_str())
                .bind(&v.code)
                .bind(&v.name)
                .bind(v.institution_id)
                .bind(&v.detail)
                .execute(&mut *tx)
                .await?;
        }
    }
    for (owner, e) in distinct_edges(&kept) {
        sqlx::query(
            "INSERT INTO graph_edges (kind, src, dst, rank, owner, institution_id, on_date,
                                      amount_cents)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (kind, src, dst, rank) DO UPDATE SET owner = excluded.owner,
                 institution_id = excluded.institution_id, on_date = excluded.on_date,
                 amount_cents = excluded.amount_cents",
        )
        .bind(e.kind.as_str())
        .bind(&e.src)
        .bind(&e.dst)
        .bind(e.rank)
        .bind(owner)
        .bind(e.institution_id)
        .bind(e.on_date)
        .bind(e.amount_cents)
        .execute(&mut *tx)
        .await?;
    }
    Ok(tx.commit().await?)
}

pub async fn vertices(pool: &SqlitePool, vids: &[String]) -> StoreResult<Vec<Vertex>> {
    Ok(sqlx::query_as::<_, VertexRow>(
        "SELECT vid, kind, code, name, institution_id, detail FROM graph_vertices
         WHERE vid IN (SELECT value FROM json_each(?1))",
    )
    .bind(serde_json::to_string(vids).expect("strings serialise"))
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter_map(vertex_of)
    .collect())
}

/// The walk, as on PostgreSQL (see there); SQLite has no `LATERAL`, so the step's far end is
/// written out where it is used.
pub async fn relations(pool: &SqlitePool, start: &str, depth: u32) -> StoreResult<Vec<Relation>> {
    Ok(sqlx::query_as::<_, RelationRow>(
        "WITH RECURSIVE walk(vid, depth, came_from, via, forward, path) AS (
             SELECT ?1, 0, '', '', 1, '|' || ?1 || '|'
           UNION ALL
             SELECT CASE WHEN e.src = w.vid THEN e.dst ELSE e.src END, w.depth + 1, w.vid,
                    e.kind, e.src = w.vid,
                    w.path || (CASE WHEN e.src = w.vid THEN e.dst ELSE e.src END) || '|'
             FROM walk w
             JOIN graph_edges e ON (e.src = w.vid OR e.dst = w.vid)
                               AND e.kind IN ('is_person', 'referred_by')
             WHERE w.depth < ?2
               AND instr(w.path, '|' || (CASE WHEN e.src = w.vid THEN e.dst ELSE e.src END)
                                 || '|') = 0
         ),
         reached AS (SELECT vid, min(depth) AS depth FROM walk GROUP BY vid),
         steps AS (
             SELECT min(depth) AS depth, came_from AS src, via AS kind, forward, vid AS dst,
                    1 AS times, NULL AS first_date, NULL AS last_date, NULL AS amount
             FROM walk WHERE depth > 0
             GROUP BY came_from, via, forward, vid
           UNION ALL
             SELECT r.depth + 1, r.vid, e.kind, 1, e.dst,
                    -- visits (days), not order lines: two items of one visit count once
                    count(DISTINCT e.on_date) + max(CASE WHEN e.on_date IS NULL THEN 1 ELSE 0 END),
                    min(e.on_date), max(e.on_date), sum(e.amount_cents)
             FROM reached r
             JOIN graph_edges e ON e.src = r.vid
                               AND e.kind IN ('belongs_to', 'bought', 'served_by')
             WHERE r.depth < ?2
             GROUP BY r.depth, r.vid, e.kind, e.dst
         )
         SELECT s.depth, s.src, s.kind, s.forward, s.dst, v.kind, v.code, v.name,
                v.institution_id, v.detail, s.times, s.first_date, s.last_date, s.amount
         FROM steps s LEFT JOIN graph_vertices v ON v.vid = s.dst
         ORDER BY s.depth, s.kind, s.last_date DESC NULLS LAST, s.dst",
    )
    .bind(start)
    .bind(depth as i32)
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter_map(relation_of)
    .collect())
}

pub async fn shared_with(
    pool: &SqlitePool,
    customer: &str,
    institution_id: i64,
    letters: &[String],
    limit: usize,
) -> StoreResult<Vec<(String, Vec<String>)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "WITH mine AS (
             SELECT DISTINCT kind, dst FROM graph_edges
             WHERE src = ?1 AND kind IN ('bought', 'served_by')
               AND substr(dst, 1, 2) IN (SELECT value FROM json_each(?3))
         )
         SELECT o.src, json_group_array(DISTINCT o.dst)
         FROM mine m
         JOIN graph_edges o ON o.dst = m.dst AND o.kind = m.kind AND o.institution_id = ?2
         WHERE o.src <> ?1
         GROUP BY o.src
         ORDER BY count(DISTINCT o.dst) DESC, o.src
         LIMIT ?4",
    )
    .bind(customer)
    .bind(institution_id)
    .bind(serde_json::to_string(letters).expect("strings serialise"))
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(vid, shared)| (vid, serde_json::from_str(&shared).unwrap_or_default()))
        .collect())
}

pub async fn also_had(
    pool: &SqlitePool,
    item: &str,
    institution_id: i64,
    limit: usize,
) -> StoreResult<(i64, Vec<(String, i64)>)> {
    let total: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT src) FROM graph_edges
         WHERE dst = ?1 AND kind = 'bought' AND institution_id = ?2",
    )
    .bind(item)
    .bind(institution_id)
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as(
        "WITH x AS (
             SELECT DISTINCT src FROM graph_edges
             WHERE dst = ?1 AND kind = 'bought' AND institution_id = ?2
         )
         SELECT y.dst, count(DISTINCT y.src) AS n
         FROM x JOIN graph_edges y ON y.src = x.src AND y.kind = 'bought'
         WHERE y.dst <> ?1 AND y.institution_id = ?2
         GROUP BY y.dst
         ORDER BY n DESC, y.dst
         LIMIT ?3",
    )
    .bind(item)
    .bind(institution_id)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    Ok((total, rows))
}
