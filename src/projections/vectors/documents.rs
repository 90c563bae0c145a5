//! How an entity becomes a point: the text that is embedded and the payload a search shows.
//!
//! A customer's text is what they bought and how staff label them (VIP level, tags, the projects
//! and products of completed orders); their structured traits ([`traits`]) are a sparse vector,
//! and their payload holds the traits' keys. Never a name, a phone number or staff's notes: the
//! text may go to an embeddings API outside the chain, and notes may hold medical history
//! (docs/threat-model.md).

use serde_json::{Map, Value};

use super::{Collection, Sparse, VERSION_KEY, point_id, traits};
use crate::domain::snapshot::{ProductSnap, ProjectSnap, SearchProfile};

/// A point before its vector: id, text to embed, institution, payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: u64,
    pub text: String,
    /// The structured traits (customers only).
    pub sparse: Option<Sparse>,
    pub institution_id: Option<i64>,
    pub payload: Map<String, Value>,
}

fn joined<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn customer(p: &SearchProfile, version: i64) -> Document {
    let text = joined(
        p.vip_level
            .iter()
            .map(String::as_str)
            .chain(p.tags.iter().map(String::as_str))
            .chain(p.projects.iter().map(String::as_str))
            .chain(p.products.iter().map(String::as_str)),
    );
    let traits = traits::of(p);
    let mut payload = Map::new();
    payload.insert("code".into(), p.code.clone().into());
    payload.insert("vip_level".into(), p.vip_level.clone().into());
    payload.insert(
        traits::TRAITS_KEY.into(),
        traits
            .iter()
            .map(|t| Value::from(t.key.as_str()))
            .collect::<Vec<_>>()
            .into(),
    );
    payload.insert(VERSION_KEY.into(), version.into());
    Document {
        id: point_id(Collection::Customers, &p.code),
        text,
        sparse: Some(traits::sparse(&traits)),
        institution_id: Some(p.institution_id),
        payload,
    }
}

pub fn project(p: &ProjectSnap, version: i64) -> Document {
    let text = joined([
        p.name.as_str(),
        p.category.as_deref().unwrap_or(""),
        p.description.as_deref().unwrap_or(""),
    ]);
    let mut payload = Map::new();
    payload.insert("code".into(), p.code.clone().into());
    payload.insert("name".into(), p.name.clone().into());
    payload.insert("category".into(), p.category.clone().into());
    payload.insert("description".into(), p.description.clone().into());
    payload.insert("price_cents".into(), p.standard_price_cents.into());
    payload.insert("status".into(), p.status.clone().into());
    payload.insert(VERSION_KEY.into(), version.into());
    Document {
        id: point_id(Collection::Projects, &p.code),
        text,
        sparse: None,
        institution_id: None,
        payload,
    }
}

pub fn product(p: &ProductSnap, version: i64) -> Document {
    let text = joined([
        p.name.as_str(),
        p.category.as_deref().unwrap_or(""),
        p.brand.as_deref().unwrap_or(""),
        p.specification.as_deref().unwrap_or(""),
    ]);
    let mut payload = Map::new();
    payload.insert("code".into(), p.code.clone().into());
    payload.insert("name".into(), p.name.clone().into());
    payload.insert("category".into(), p.category.clone().into());
    payload.insert("brand".into(), p.brand.clone().into());
    payload.insert("specification".into(), p.specification.clone().into());
    payload.insert("price_cents".into(), p.price_cents.into());
    payload.insert("status".into(), p.status.clone().into());
    payload.insert(VERSION_KEY.into(), version.into());
    Document {
        id: point_id(Collection::Products, &p.code),
        text,
        sparse: None,
        institution_id: None,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_text_and_payload_carry_no_notes() {
        let p = SearchProfile {
            id: 1,
            code: "C1".into(),
            institution_id: 7,
            vip_level: Some("金卡".into()),
            tags: vec!["敏感肌".into()],
            opted_out: false,
            projects: vec!["水光针".into()],
            products: vec!["医用修护面膜".into()],
            items: Vec::new(),
        };
        let d = customer(&p, 9);
        assert_eq!(d.text, "金卡 敏感肌 水光针 医用修护面膜");
        assert!(!d.payload.contains_key("notes"));
        assert_eq!(
            d.payload[traits::TRAITS_KEY],
            serde_json::json!(["v:金卡", "t:敏感肌"])
        );
        // A level and a tag re-rank; they are no dimension of the index.
        assert_eq!(d.sparse.as_ref().map(|s| s.indices.len()), Some(0));
        assert!(!serde_json::to_string(&d.payload).unwrap().contains("怕痛"));
        assert_eq!(d.institution_id, Some(7));
        assert_eq!(d.payload[VERSION_KEY], 9);
    }
}
