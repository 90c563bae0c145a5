//! Every nGQL statement the NebulaGraph adapter sends, built here and only here, with strings
//! quoted by one rule ([`quote`]). The tests pin the statements' text.
//!
//! Every tag has the same properties, as has every edge type, so that one schema holds the
//! embedded graph's columns: a vertex's `code`, `name`, `institution_id`, `detail` and the
//! `version` its owner was written with; an edge's `owner`, `version`, `institution_id`,
//! `on_date` (text, `YYYY-MM-DD`) and `amount_cents`.
//!
//! Answers are decoded by `serde-nebula-fbthrift-graph`, which reads neither a NULL into an
//! `Option` nor a list: queries yield `coalesce(…, "")` or `coalesce(…, 0)` for what may be
//! missing, and rows rather than lists (the adapter folds them).

use std::fmt::Write;

use super::super::{Edge, EdgeKind, Vertex, VertexKind};

/// A string literal: in double quotes, with backslashes, quotes and line breaks escaped.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| quote(s))
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt_text(v: Option<&str>) -> String {
    v.map(quote).unwrap_or_else(|| "NULL".to_owned())
}

fn opt_int(v: Option<i64>) -> String {
    v.map(|n| n.to_string())
        .unwrap_or_else(|| "NULL".to_owned())
}

/// The space, every tag and every edge type (`IF NOT EXISTS`: `revisit init` runs it again
/// safely). Vertex ids are strings of up to 128 bytes.
pub fn schema(space: &str) -> Vec<String> {
    let mut out = vec![format!(
        "CREATE SPACE IF NOT EXISTS {space} (partition_num = 10, replica_factor = 1, \
         vid_type = FIXED_STRING(128))"
    )];
    for kind in VertexKind::ALL {
        out.push(format!(
            "CREATE TAG IF NOT EXISTS {}(code string, name string NULL, institution_id int NULL, \
             detail string NULL, version int)",
            kind.as_str()
        ));
    }
    for kind in EdgeKind::ALL {
        out.push(format!(
            "CREATE EDGE IF NOT EXISTS {}(owner string, version int, institution_id int NULL, \
             on_date string NULL, amount_cents int NULL)",
            kind.as_str()
        ));
    }
    out
}

pub fn use_space(space: &str) -> String {
    format!("USE {space}")
}

/// The owner version of each of these vertices that exists.
pub fn vertex_versions(vids: &[String]) -> String {
    format!(
        "FETCH PROP ON * {} YIELD id(vertex) AS vid, properties(vertex).version AS version",
        quoted_list(vids)
    )
}

/// Every edge these customers have, with its owner and version: the edges a write replaces,
/// and the versions it must not go below.
pub fn owned_edges(customers: &[String]) -> String {
    format!(
        "GO FROM {} OVER {} YIELD type(edge) AS kind, src(edge) AS src, dst(edge) AS dst, \
         rank(edge) AS rank, properties(edge).owner AS owner, properties(edge).version AS version",
        quoted_list(customers),
        edge_list(&EdgeKind::ALL)
    )
}

fn edge_list(kinds: &[EdgeKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `DELETE EDGE` of these edges, a statement per edge type.
pub fn delete_edges(edges: &[(EdgeKind, String, String, i64)]) -> Vec<String> {
    EdgeKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let list: Vec<String> = edges
                .iter()
                .filter(|e| e.0 == kind)
                .map(|(_, src, dst, rank)| format!("{} -> {}@{rank}", quote(src), quote(dst)))
                .collect();
            (!list.is_empty()).then(|| format!("DELETE EDGE {} {}", kind.as_str(), list.join(", ")))
        })
        .collect()
}

/// `INSERT VERTEX` of these vertices, a statement per tag; `if_not_exists` leaves vertices
/// that exist alone (persons, which no entity owns).
pub fn insert_vertices(vertices: &[&Vertex], version: i64, if_not_exists: bool) -> Vec<String> {
    VertexKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let mut values = String::new();
            for v in vertices.iter().filter(|v| v.kind == kind) {
                if !values.is_empty() {
                    values.push_str(", ");
                }
                let _ = write!(
                    values,
                    "{}:({}, {}, {}, {}, {version})",
                    quote(&v.vid),
                    quote(&v.code),
                    opt_text(v.name.as_deref()),
                    opt_int(v.institution_id),
                    opt_text(v.detail.as_deref()),
                );
            }
            (!values.is_empty()).then(|| {
                format!(
                    "INSERT VERTEX {}{}(code, name, institution_id, detail, version) VALUES {values}",
                    if if_not_exists { "IF NOT EXISTS " } else { "" },
                    kind.as_str()
                )
            })
        })
        .collect()
}

/// `INSERT EDGE` of these edges with their owners, a statement per edge type.
pub fn insert_edges(edges: &[(&str, &Edge)], version: i64) -> Vec<String> {
    EdgeKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let mut values = String::new();
            for (owner, e) in edges.iter().filter(|(_, e)| e.kind == kind) {
                if !values.is_empty() {
                    values.push_str(", ");
                }
                let _ = write!(
                    values,
                    "{} -> {}@{}:({}, {version}, {}, {}, {})",
                    quote(&e.src),
                    quote(&e.dst),
                    e.rank,
                    quote(owner),
                    opt_int(e.institution_id),
                    opt_text(e.on_date.map(|d| d.to_string()).as_deref()),
                    opt_int(e.amount_cents),
                );
            }
            (!values.is_empty()).then(|| {
                format!(
                    "INSERT EDGE {}(owner, version, institution_id, on_date, amount_cents) VALUES {values}",
                    kind.as_str()
                )
            })
        })
        .collect()
}

/// One step of a walk from `frontier` along `is_person` and `referred_by`, both ways.
pub fn walk_step(frontier: &[String]) -> String {
    let from = quoted_list(frontier);
    let over = edge_list(&EdgeKind::WALKED);
    format!(
        "GO FROM {from} OVER {over} YIELD id($^) AS from, id($$) AS to, type(edge) AS kind, \
         true AS forward \
         UNION ALL \
         GO FROM {from} OVER {over} REVERSELY YIELD id($^) AS from, id($$) AS to, \
         type(edge) AS kind, false AS forward"
    )
}

/// The leaf edges (institution, purchases, doctors) of these customers.
pub fn leaves(customers: &[String]) -> String {
    format!(
        "GO FROM {} OVER {} YIELD id($^) AS from, id($$) AS to, type(edge) AS kind, \
         coalesce(properties(edge).on_date, \"\") AS on_date, \
         coalesce(properties(edge).amount_cents, 0) AS amount_cents",
        quoted_list(customers),
        edge_list(&EdgeKind::LEAVES)
    )
}

/// What these vertices are.
pub fn fetch_vertices(vids: &[String]) -> String {
    format!(
        "FETCH PROP ON * {} YIELD id(vertex) AS vid, tags(vertex)[0] AS kind, \
         properties(vertex).code AS code, coalesce(properties(vertex).name, \"\") AS name, \
         coalesce(properties(vertex).institution_id, 0) AS institution_id, \
         coalesce(properties(vertex).detail, \"\") AS detail",
        quoted_list(vids)
    )
}

/// Customers of `institution_id` sharing, with `customer`, vertices of these kinds: a row per
/// customer and thing shared (the adapter ranks them).
pub fn shared_with(customer: &str, institution_id: i64, kinds: &[VertexKind]) -> String {
    let starts: Vec<String> = kinds
        .iter()
        .map(|k| {
            format!(
                "dst(edge) STARTS WITH {}",
                quote(&format!("{}:", k.letter()))
            )
        })
        .collect();
    format!(
        "GO FROM {me} OVER bought, served_by WHERE {starts} YIELD DISTINCT dst(edge) AS item \
         | GO FROM $-.item OVER bought, served_by REVERSELY \
         WHERE properties(edge).institution_id == {institution_id} AND id($$) != {me} \
         YIELD DISTINCT id($$) AS customer, $-.item AS item",
        me = quote(customer),
        starts = starts.join(" OR "),
    )
}

/// How many customers of `institution_id` bought `item`.
pub fn bought_by(item: &str, institution_id: i64) -> String {
    format!(
        "GO FROM {} OVER bought REVERSELY WHERE properties(edge).institution_id == {institution_id} \
         YIELD DISTINCT id($$) AS customer | YIELD count(*) AS n",
        quote(item)
    )
}

/// What else the customers of `institution_id` who bought `item` bought there.
pub fn also_had(item: &str, institution_id: i64, limit: usize) -> String {
    let me = quote(item);
    format!(
        "GO FROM {me} OVER bought REVERSELY WHERE properties(edge).institution_id == {institution_id} \
         YIELD DISTINCT id($$) AS customer \
         | GO FROM $-.customer OVER bought \
         WHERE properties(edge).institution_id == {institution_id} AND dst(edge) != {me} \
         YIELD dst(edge) AS item, $-.customer AS customer \
         | GROUP BY $-.item YIELD $-.item AS item, count(DISTINCT $-.customer) AS n \
         | ORDER BY $-.n DESC, $-.item | LIMIT {limit}"
    )
}

/// Asks NebulaGraph to count the space's vertices and edges (a job it runs in the background).
pub fn submit_stats() -> &'static str {
    "SUBMIT JOB STATS"
}

/// The counts of the last stats job.
pub fn show_stats() -> &'static str {
    "SHOW STATS"
}

/// Clears the graph before a rebuild: drops the space's data (NebulaGraph 3.3 and later).
pub fn clear_space(space: &str) -> String {
    format!("CLEAR SPACE IF EXISTS {space}")
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn strings_are_quoted_so_that_no_code_can_end_a_statement() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), r#""x\ny""#);
        assert_eq!(quote("李明"), "\"李明\"");
        assert_eq!(
            vertex_versions(&["c:A\"; DROP SPACE revisit; \"".into()]),
            r#"FETCH PROP ON * "c:A\"; DROP SPACE revisit; \"" YIELD id(vertex) AS vid, properties(vertex).version AS version"#
        );
    }

    #[test]
    fn the_schema_has_a_space_six_tags_and_five_edge_types() {
        let s = schema("revisit");
        assert_eq!(s.len(), 12);
        assert!(s[0].starts_with("CREATE SPACE IF NOT EXISTS revisit ("));
        assert_eq!(
            s[3],
            "CREATE TAG IF NOT EXISTS customer(code string, name string NULL, institution_id int NULL, detail string NULL, version int)"
        );
        assert_eq!(
            s[11],
            "CREATE EDGE IF NOT EXISTS served_by(owner string, version int, institution_id int NULL, on_date string NULL, amount_cents int NULL)"
        );
    }

    #[test]
    fn writes_are_one_statement_per_tag_and_edge_type() {
        let c = Vertex {
            vid: "c:C1".into(),
            kind: VertexKind::Customer,
            code: "C1".into(),
            name: None,
            institution_id: Some(2),
            detail: Some("金卡".into()),
        };
        let d = Vertex {
            vid: "d:D1".into(),
            kind: VertexKind::Doctor,
            code: "D1".into(),
            name: Some("李明".into()),
            institution_id: Some(2),
            detail: None,
        };
        assert_eq!(
            insert_vertices(&[&c, &d], 9, false),
            vec![
                r#"INSERT VERTEX customer(code, name, institution_id, detail, version) VALUES "c:C1":("C1", NULL, 2, "金卡", 9)"#,
                r#"INSERT VERTEX doctor(code, name, institution_id, detail, version) VALUES "d:D1":("D1", "李明", 2, NULL, 9)"#,
            ]
        );
        assert!(
            insert_vertices(&[&c], 9, true)[0].starts_with("INSERT VERTEX IF NOT EXISTS customer(")
        );
        let e = Edge {
            kind: EdgeKind::Bought,
            src: "c:C1".into(),
            dst: "j:P1".into(),
            rank: -5,
            institution_id: Some(2),
            on_date: NaiveDate::from_ymd_opt(2026, 3, 1),
            amount_cents: Some(1200),
        };
        assert_eq!(
            insert_edges(&[("o:2/ORD-1", &e)], 9),
            vec![
                r#"INSERT EDGE bought(owner, version, institution_id, on_date, amount_cents) VALUES "c:C1" -> "j:P1"@-5:("o:2/ORD-1", 9, 2, "2026-03-01", 1200)"#
            ]
        );
        assert_eq!(
            delete_edges(&[
                (EdgeKind::Bought, "c:C1".into(), "j:P1".into(), -5),
                (EdgeKind::IsPerson, "c:C1".into(), "p:4".into(), 0),
                (EdgeKind::Bought, "c:C1".into(), "g:X".into(), 3),
            ]),
            vec![
                r#"DELETE EDGE is_person "c:C1" -> "p:4"@0"#,
                r#"DELETE EDGE bought "c:C1" -> "j:P1"@-5, "c:C1" -> "g:X"@3"#,
            ]
        );
    }

    #[test]
    fn queries_name_the_institution_and_follow_the_edges_they_mean() {
        assert_eq!(
            walk_step(&["c:C1".into()]),
            r#"GO FROM "c:C1" OVER is_person, referred_by YIELD id($^) AS from, id($$) AS to, type(edge) AS kind, true AS forward UNION ALL GO FROM "c:C1" OVER is_person, referred_by REVERSELY YIELD id($^) AS from, id($$) AS to, type(edge) AS kind, false AS forward"#
        );
        assert!(
            leaves(&["c:C1".into(), "c:C2".into()])
                .starts_with(r#"GO FROM "c:C1", "c:C2" OVER belongs_to, bought, served_by YIELD"#)
        );
        let q = shared_with("c:C1", 2, &[VertexKind::Doctor, VertexKind::Project]);
        assert!(q.contains(r#"WHERE dst(edge) STARTS WITH "d:" OR dst(edge) STARTS WITH "j:""#));
        assert!(q.contains("properties(edge).institution_id == 2 AND id($$) != \"c:C1\""));
        assert!(q.ends_with("YIELD DISTINCT id($$) AS customer, $-.item AS item"));
        assert!(
            fetch_vertices(&["d:D1".into()])
                .contains(r#"coalesce(properties(vertex).name, "") AS name"#)
        );
        let q = also_had("j:P1", 3, 5);
        assert_eq!(q.matches("institution_id == 3").count(), 2);
        assert!(q.contains(r#"dst(edge) != "j:P1""#));
        assert!(bought_by("j:P1", 3).ends_with("| YIELD count(*) AS n"));
    }
}
