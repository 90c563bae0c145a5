//! The embedded graph's SQL on PostgreSQL: arrays through `unnest` for whole batches, and
//! `INSERT … ON CONFLICT … WHERE version <=` on the owners, whose row locks make a second job
//! for the same owner wait and then see the version the first one wrote.

use std::collections::HashSet;

use sqlx::PgPool;

use super::{
    RelationRow, VertexRow, distinct_edges, owner_ids, relation_of, vertex_of, vertices_of,
};
use crate::{
    projections::graph::{Owned, Relation, Vertex},
    store::StoreResult,
};

pub async fn write(pool: &PgPool, owned: &[Owned], version: i64) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    let claimed: HashSet<String> = sqlx::query_scalar(
        "INSERT INTO graph_owners (owner, version) SELECT o, $2 FROM unnest($1::text[]) o
         ON CONFLICT (owner) DO UPDATE SET version = EXCLUDED.version
         WHERE graph_owners.version <= EXCLUDED.version
         RETURNING owner",
    )
    .bind(owner_ids(owned))
    .bind(version)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let kept: Vec<&Owned> = owned
        .iter()
        .filter(|o| claimed.contains(&o.owner))
        .collect();
    if kept.is_empty() {
        return Ok(tx.commit().await?);
    }
    let claimed: Vec<&str> = claimed.iter().map(String::as_str).collect();
    sqlx::query("DELETE FROM graph_edges WHERE owner = ANY($1)")
        .bind(&claimed)
        .execute(&mut *tx)
        .await?;
    let (own, shared) = vertices_of(&kept);
    for (vertices, replace) in [(own, true), (shared, false)] {
        if vertices.is_empty() {
            continue;
        }
        let sql = if replace {
            "INSERT INTO graph_vertices (vid, kind, code, name, institution_id, detail)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                  $6::text[])
             ON CONFLICT (vid) DO UPDATE SET kind = EXCLUDED.kind, code = EXCLUDED.code,
                 name = EXCLUDED.name, institution_id = EXCLUDED.institution_id,
                 detail = EXCLUDED.detail"
        } else {
            "INSERT INTO graph_vertices (vid, kind, code, name, institution_id, detail)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                  $6::text[])
             ON CONFLICT (vid) DO NOTHING"
        };
        sqlx::query(sql)
            .bind(vertices.iter().map(|v| v.vid.as_str()).collect::<Vec<_>>())
            .bind(vertices.iter().map(|v| v.kind.as_str()).collect::<Vec<_>>())
            .bind(vertices.iter().map(|v| v.code.as_str()).collect::<Vec<_>>())
            .bind(
                vertices
                    .iter()
                    .map(|v| v.name.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                vertices
                    .iter()
                    .map(|v| v.institution_id)
                    .collect::<Vec<_>>(),
            )
            .bind(
                vertices
                    .iter()
                    .map(|v| v.detail.as_deref())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
    }
    let edges = distinct_edges(&kept);
    if !edges.is_empty() {
        sqlx::query(
            "INSERT INTO graph_edges (kind, src, dst, rank, owner, institution_id, on_date,
                                      amount_cents)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                                  $6::bigint[], $7::date[], $8::bigint[])
             ON CONFLICT (kind, src, dst, rank) DO UPDATE SET owner = EXCLUDED.owner,
                 institution_id = EXCLUDED.institution_id, on_date = EXCLUDED.on_date,
                 amount_cents = EXCLUDED.amount_cents",
        )
        .bind(
            edges
                .iter()
                .map(|(_, e)| e.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            edges
                .iter()
                .map(|(_, e)| e.src.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            edges
                .iter()
                .map(|(_, e)| e.dst.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(edges.iter().map(|(_, e)| e.rank).collect::<Vec<_>>())
        .bind(edges.iter().map(|(o, _)| *o).collect::<Vec<_>>())
        .bind(
            edges
                .iter()
                .map(|(_, e)| e.institution_id)
                .collect::<Vec<_>>(),
        )
        .bind(edges.iter().map(|(_, e)| e.on_date).collect::<Vec<_>>())
        .bind(
            edges
                .iter()
                .map(|(_, e)| e.amount_cents)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(tx.commit().await?)
}

pub async fn vertices(pool: &PgPool, vids: &[String]) -> StoreResult<Vec<Vertex>> {
    Ok(sqlx::query_as::<_, VertexRow>(
        "SELECT vid, kind, code, name, institution_id, detail FROM graph_vertices
         WHERE vid = ANY($1)",
    )
    .bind(vids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter_map(vertex_of)
    .collect())
}

/// The walk: a recursive query along `is_person` and `referred_by` both ways (never twice
/// through one vertex on a path), then each reached customer's leaf edges, folded per
/// destination.
pub async fn relations(pool: &PgPool, start: &str, depth: u32) -> StoreResult<Vec<Relation>> {
    Ok(sqlx::query_as::<_, RelationRow>(
        "WITH RECURSIVE walk(vid, depth, came_from, via, forward, path) AS (
             SELECT $1::text, 0, ''::text, ''::text, true, '|' || $1::text || '|'
           UNION ALL
             SELECT n.next, w.depth + 1, w.vid, e.kind, e.src = w.vid, w.path || n.next || '|'
             FROM walk w
             JOIN graph_edges e ON (e.src = w.vid OR e.dst = w.vid)
                               AND e.kind IN ('is_person', 'referred_by')
             CROSS JOIN LATERAL (SELECT CASE WHEN e.src = w.vid THEN e.dst ELSE e.src END AS next) n
             WHERE w.depth < $2 AND strpos(w.path, '|' || n.next || '|') = 0
         ),
         reached AS (SELECT vid, min(depth) AS depth FROM walk GROUP BY vid),
         steps AS (
             SELECT min(depth) AS depth, came_from AS src, via AS kind, forward, vid AS dst,
                    1::bigint AS times, NULL::date AS first_date, NULL::date AS last_date,
                    NULL::bigint AS amount
             FROM walk WHERE depth > 0
             GROUP BY came_from, via, forward, vid
           UNION ALL
             SELECT r.depth + 1, r.vid, e.kind, true, e.dst,
                    -- visits (days), not order lines: two items of one visit count once
                    count(DISTINCT e.on_date) + max(CASE WHEN e.on_date IS NULL THEN 1 ELSE 0 END),
                    min(e.on_date), max(e.on_date), sum(e.amount_cents)::bigint
             FROM reached r
             JOIN graph_edges e ON e.src = r.vid
                               AND e.kind IN ('belongs_to', 'bought', 'served_by')
             WHERE r.depth < $2
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
    pool: &PgPool,
    customer: &str,
    institution_id: i64,
    letters: &[String],
    limit: usize,
) -> StoreResult<Vec<(String, Vec<String>)>> {
    Ok(sqlx::query_as(
        "WITH mine AS (
             SELECT DISTINCT kind, dst FROM graph_edges
             WHERE src = $1 AND kind IN ('bought', 'served_by') AND substr(dst, 1, 2) = ANY($3)
         )
         SELECT o.src, array_agg(DISTINCT o.dst)
         FROM mine m
         JOIN graph_edges o ON o.dst = m.dst AND o.kind = m.kind AND o.institution_id = $2
         WHERE o.src <> $1
         GROUP BY o.src
         ORDER BY count(DISTINCT o.dst) DESC, o.src
         LIMIT $4",
    )
    .bind(customer)
    .bind(institution_id)
    .bind(letters)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?)
}

pub async fn also_had(
    pool: &PgPool,
    item: &str,
    institution_id: i64,
    limit: usize,
) -> StoreResult<(i64, Vec<(String, i64)>)> {
    let total: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT src) FROM graph_edges
         WHERE dst = $1 AND kind = 'bought' AND institution_id = $2",
    )
    .bind(item)
    .bind(institution_id)
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as(
        "WITH x AS (
             SELECT DISTINCT src FROM graph_edges
             WHERE dst = $1 AND kind = 'bought' AND institution_id = $2
         )
         SELECT y.dst, count(DISTINCT y.src) AS n
         FROM x JOIN graph_edges y ON y.src = x.src AND y.kind = 'bought'
         WHERE y.dst <> $1 AND y.institution_id = $2
         GROUP BY y.dst
         ORDER BY n DESC, y.dst
         LIMIT $3",
    )
    .bind(item)
    .bind(institution_id)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    Ok((total, rows))
}
