//! Snapshots as vertices and edges: one rule for both engines, so the embedded graph and
//! NebulaGraph hold the same graph.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{Edge, EdgeKind, Owned, Vertex, VertexKind};
use crate::domain::snapshot::{OrderSnap, Snapshots, order_key};

/// What each entity of `snapshots` owns in the graph. Revisits and search profiles own nothing.
pub fn owned(snapshots: &Snapshots) -> Vec<Owned> {
    match snapshots {
        Snapshots::Institutions(s) => s
            .iter()
            .map(|i| {
                vertex_only(Vertex {
                    vid: VertexKind::Institution.vid(i.id),
                    kind: VertexKind::Institution,
                    code: i.code.clone(),
                    name: Some(i.name.clone()),
                    institution_id: Some(i.id),
                    detail: None,
                })
            })
            .collect(),
        Snapshots::Doctors(s) => s
            .iter()
            .map(|d| {
                vertex_only(Vertex {
                    vid: VertexKind::Doctor.vid(&d.code),
                    kind: VertexKind::Doctor,
                    code: d.code.clone(),
                    name: Some(d.name.clone()),
                    institution_id: d.institution_id,
                    detail: d.title.clone(),
                })
            })
            .collect(),
        Snapshots::Projects(s) => s
            .iter()
            .map(|p| {
                vertex_only(Vertex {
                    vid: VertexKind::Project.vid(&p.code),
                    kind: VertexKind::Project,
                    code: p.code.clone(),
                    name: Some(p.name.clone()),
                    institution_id: None,
                    detail: p.category.clone(),
                })
            })
            .collect(),
        Snapshots::Products(s) => s
            .iter()
            .map(|p| {
                vertex_only(Vertex {
                    vid: VertexKind::Product.vid(&p.code),
                    kind: VertexKind::Product,
                    code: p.code.clone(),
                    name: Some(p.name.clone()),
                    institution_id: None,
                    detail: p.brand.clone().or_else(|| p.category.clone()),
                })
            })
            .collect(),
        Snapshots::Customers(s) => s
            .iter()
            .map(|c| {
                let me = VertexKind::Customer.vid(&c.code);
                let person = VertexKind::Person.vid(c.person_id);
                let edge = |kind, dst: String| Edge {
                    kind,
                    src: me.clone(),
                    dst,
                    rank: 0,
                    institution_id: None,
                    on_date: None,
                    amount_cents: None,
                };
                let mut edges = vec![
                    edge(
                        EdgeKind::BelongsTo,
                        VertexKind::Institution.vid(c.institution_id),
                    ),
                    edge(EdgeKind::IsPerson, person.clone()),
                ];
                if let Some(r) = c.referrer_code.as_deref().filter(|r| *r != c.code) {
                    edges.push(edge(EdgeKind::ReferredBy, VertexKind::Customer.vid(r)));
                }
                Owned {
                    owner: me.clone(),
                    vertex: Some(Vertex {
                        vid: me.clone(),
                        kind: VertexKind::Customer,
                        code: c.code.clone(),
                        name: None,
                        institution_id: Some(c.institution_id),
                        detail: c.vip_level.clone(),
                    }),
                    edges,
                    shared: vec![Vertex {
                        vid: person,
                        kind: VertexKind::Person,
                        code: c.person_id.to_string(),
                        name: None,
                        institution_id: None,
                        detail: None,
                    }],
                }
            })
            .collect(),
        Snapshots::Orders(s) => s.iter().map(order).collect(),
        Snapshots::Revisits(_) | Snapshots::SearchProfiles(_) => Vec::new(),
    }
}

fn vertex_only(v: Vertex) -> Owned {
    Owned {
        owner: v.vid.clone(),
        vertex: Some(v),
        edges: Vec::new(),
        shared: Vec::new(),
    }
}

/// The owner id of an order's edges.
pub fn order_owner(institution_id: i64, order_number: &str) -> String {
    format!("o:{}", order_key(institution_id, order_number))
}

/// A completed order's edges: `bought` for each line, `served_by` for each doctor (with the
/// amount of that doctor's lines). Any other status owns no edges, so an order that is
/// refunded loses the ones it had.
fn order(o: &OrderSnap) -> Owned {
    let key = order_key(o.institution_id, &o.order_number);
    let customer = VertexKind::Customer.vid(&o.customer_code);
    let mut edges = Vec::new();
    if o.status == "completed" {
        let mut doctors: BTreeMap<&str, i64> = BTreeMap::new();
        for item in &o.items {
            let kind = if item.item_type == "product" {
                VertexKind::Product
            } else {
                VertexKind::Project
            };
            edges.push(Edge {
                kind: EdgeKind::Bought,
                src: customer.clone(),
                dst: kind.vid(&item.item_code),
                rank: rank(&format!("{key}#{}", item.line_no)),
                institution_id: Some(o.institution_id),
                on_date: Some(o.order_date),
                amount_cents: Some(item.actual_price_cents),
            });
            if let Some(d) = item.doctor_code.as_deref() {
                *doctors.entry(d).or_default() += item.actual_price_cents;
            }
        }
        for (doctor, amount) in doctors {
            edges.push(Edge {
                kind: EdgeKind::ServedBy,
                src: customer.clone(),
                dst: VertexKind::Doctor.vid(doctor),
                rank: rank(&key),
                institution_id: Some(o.institution_id),
                on_date: Some(o.order_date),
                amount_cents: Some(amount),
            });
        }
    }
    Owned {
        owner: order_owner(o.institution_id, &o.order_number),
        vertex: None,
        edges,
        shared: Vec::new(),
    }
}

/// An edge rank from a text: the first 8 bytes of its SHA-256, the same on every run (NebulaGraph
/// tells edges apart by source, type, rank and destination, so an order's line needs one of its
/// own).
pub fn rank(text: &str) -> i64 {
    let digest = Sha256::digest(text.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};

    use super::*;
    use crate::domain::snapshot::{CustomerSnap, OrderItemSnap};

    fn customer(code: &str, referrer: Option<&str>) -> CustomerSnap {
        CustomerSnap {
            id: 7,
            code: code.into(),
            institution_id: 2,
            person_id: 40,
            gender: None,
            birth_year: None,
            vip_level: Some("金卡".into()),
            source: None,
            opted_out: false,
            created_at: Utc::now(),
            referrer_code: referrer.map(str::to_owned),
        }
    }

    fn item(line_no: i32, item_type: &str, code: &str, doctor: Option<&str>) -> OrderItemSnap {
        OrderItemSnap {
            line_no,
            item_type: item_type.into(),
            item_code: code.into(),
            quantity: 1,
            actual_price_cents: 100 * i64::from(line_no),
            doctor_code: doctor.map(str::to_owned),
        }
    }

    fn order_of(status: &str) -> OrderSnap {
        OrderSnap {
            institution_id: 2,
            order_number: "ORD-1".into(),
            customer_id: 7,
            customer_code: "C1".into(),
            order_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            total_amount_cents: 600,
            payment_method: None,
            status: status.into(),
            items: vec![
                item(1, "project", "PJ1", Some("D1")),
                item(2, "product", "PD1", Some("D1")),
                item(3, "project", "PJ1", Some("D2")),
            ],
        }
    }

    #[test]
    fn a_customer_owns_its_vertex_and_its_three_edges_and_names_its_person() {
        let out = owned(&Snapshots::Customers(vec![customer("C1", Some("C0"))]));
        assert_eq!(out.len(), 1);
        let o = &out[0];
        assert_eq!(o.owner, "c:C1");
        let v = o.vertex.as_ref().unwrap();
        assert_eq!(
            (v.name.as_deref(), v.detail.as_deref()),
            (None, Some("金卡"))
        );
        let edges: Vec<(EdgeKind, &str)> =
            o.edges.iter().map(|e| (e.kind, e.dst.as_str())).collect();
        assert_eq!(
            edges,
            vec![
                (EdgeKind::BelongsTo, "i:2"),
                (EdgeKind::IsPerson, "p:40"),
                (EdgeKind::ReferredBy, "c:C0")
            ]
        );
        assert_eq!(o.shared[0].vid, "p:40");
        let alone = owned(&Snapshots::Customers(vec![customer("C1", Some("C1"))]));
        assert_eq!(alone[0].edges.len(), 2, "nobody refers themselves");
    }

    #[test]
    fn a_completed_order_owns_a_bought_edge_per_line_and_a_served_by_edge_per_doctor() {
        let o = &owned(&Snapshots::Orders(vec![order_of("completed")]))[0];
        assert_eq!(o.owner, "o:2/ORD-1");
        assert!(o.vertex.is_none());
        let bought: Vec<&Edge> = o
            .edges
            .iter()
            .filter(|e| e.kind == EdgeKind::Bought)
            .collect();
        assert_eq!(bought.len(), 3);
        assert_eq!(bought[1].dst, "g:PD1");
        assert_ne!(
            bought[0].rank, bought[2].rank,
            "two lines of PJ1 are two edges"
        );
        let served: Vec<(&str, Option<i64>)> = o
            .edges
            .iter()
            .filter(|e| e.kind == EdgeKind::ServedBy)
            .map(|e| (e.dst.as_str(), e.amount_cents))
            .collect();
        assert_eq!(served, vec![("d:D1", Some(300)), ("d:D2", Some(300))]);
        assert!(o.edges.iter().all(|e| e.src == "c:C1"
            && e.institution_id == Some(2)
            && e.on_date == NaiveDate::from_ymd_opt(2026, 3, 1)));
        // The same order read again gives the same ranks: a rewrite replaces, never adds.
        assert_eq!(
            o,
            &owned(&Snapshots::Orders(vec![order_of("completed")]))[0]
        );
        let refunded = &owned(&Snapshots::Orders(vec![order_of("refunded")]))[0];
        assert!(refunded.edges.is_empty() && refunded.owner == o.owner);
    }
}
