//! What makes two customers similar, as a clinic means it (docs/similar-customers.md): the
//! treatments they had and who did them, the products they bought, their doctors and the
//! categories of what they had; then, a little, their VIP level and staff's tags. Free-text notes
//! (which may hold health data) are not a trait.
//!
//! Each trait has a value: the weight of its kind, a customer's weights scaled to unit length (a
//! customer who had everything is not like everyone). Two customers score the sum over the traits
//! both share of `value × value × idf`, the trait's inverse document frequency: a treatment few
//! customers had counts for more than one everybody had.
//!
//! The item kinds (projects, products, a project by its doctor; [`TraitKind::in_index`]) are
//! dimensions of a sparse vector in the index, its index a hash of the trait's key, weighed by the
//! engine's `Idf` modifier: the search finds the candidates by them. The kinds a large part of the
//! customers share (doctors, categories, VIP level, tags) are added to the candidates' scores
//! afterwards, from the keys in their payload, by the same formula. In the index they would cost
//! twice: the engine's writable segment pays, for each point added to a dimension, a pass over
//! every point already in it (a VIP level all 300,000 customers share made a full resync
//! quadratic: hours), and a search scores every point of every dimension it asks for (a doctor
//! of 25,000 of them, for a trait that weighs 0.3).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Sparse;
use crate::domain::snapshot::SearchProfile;

/// The name of the sparse vector in the customers' collection.
pub const SPARSE_NAME: &str = "traits";
/// The payload key holding a customer's trait keys (indexed: its counts give the IDF that
/// explains a result).
pub const TRAITS_KEY: &str = "traits";

/// The kinds of trait, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TraitKind {
    Project,
    Product,
    /// The same treatment by the same doctor (on top of the treatment).
    ProjectWithDoctor,
    Doctor,
    /// A category of the catalogue (of projects or products).
    Category,
    VipLevel,
    Tag,
}

impl TraitKind {
    /// Whether the trait is a dimension of the index's sparse vector (the others re-rank).
    pub fn in_index(self) -> bool {
        matches!(
            self,
            Self::Project | Self::Product | Self::ProjectWithDoctor
        )
    }

    /// How much a trait of this kind weighs before its rarity does.
    pub fn weight(self) -> f32 {
        match self {
            Self::Project => 1.0,
            Self::Product => 0.8,
            Self::ProjectWithDoctor => 0.5,
            Self::Doctor => 0.3,
            Self::Category => 0.4,
            Self::VipLevel | Self::Tag => 0.2,
        }
    }

    /// The kind of a trait key.
    pub fn of_key(key: &str) -> Option<Self> {
        let prefix = key.split_once(':')?.0;
        [
            Self::Project,
            Self::Product,
            Self::ProjectWithDoctor,
            Self::Doctor,
            Self::Category,
            Self::VipLevel,
            Self::Tag,
        ]
        .into_iter()
        .find(|k| k.prefix() == prefix)
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::ProjectWithDoctor => "pd",
            Self::Project => "p",
            Self::Product => "g",
            Self::Doctor => "d",
            Self::Category => "c",
            Self::VipLevel => "v",
            Self::Tag => "t",
        }
    }
}

/// One trait of a customer: its kind, its key (codes, not names, so a renamed item stays the
/// same trait), its name (of the project, product, doctor, category, level or tag) and what staff
/// read of it when two customers share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trait {
    pub kind: TraitKind,
    pub key: String,
    pub name: String,
    pub label: String,
}

/// A doctor's name, or their code when the directory has none.
fn doctor_name<'a>(name: Option<&'a str>, code: &'a str) -> &'a str {
    name.filter(|n| !n.trim().is_empty()).unwrap_or(code)
}

/// The traits of a customer, strongest kind first, each once.
pub fn of(p: &SearchProfile) -> Vec<Trait> {
    let mut out: BTreeMap<(TraitKind, String), (String, String)> = BTreeMap::new();
    let mut add = |kind: TraitKind, value: &str, name: &str, label: String| {
        let value = value.trim();
        if !value.is_empty() {
            let key = format!("{}:{value}", kind.prefix());
            out.entry((kind, key))
                .or_insert_with(|| (name.to_owned(), label));
        }
    };
    for it in &p.items {
        let project = it.kind == "project";
        if project {
            add(
                TraitKind::Project,
                &it.code,
                &it.name,
                format!("都做过 {}", it.name),
            );
            if let Some(d) = it.doctor_code.as_deref().filter(|d| !d.trim().is_empty()) {
                let who = doctor_name(it.doctor_name.as_deref(), d);
                add(
                    TraitKind::ProjectWithDoctor,
                    &format!("{}@{d}", it.code),
                    &it.name,
                    format!("都由 {who} 医生做 {}", it.name),
                );
                add(TraitKind::Doctor, d, who, format!("都找 {who} 医生看过"));
            }
        } else {
            add(
                TraitKind::Product,
                &it.code,
                &it.name,
                format!("都买过 {}", it.name),
            );
        }
        if let Some(c) = &it.category {
            add(TraitKind::Category, c, c, format!("都有「{c}」类的消费"));
        }
    }
    if let Some(v) = &p.vip_level {
        add(TraitKind::VipLevel, v, v, format!("同为{v}"));
    }
    for t in &p.tags {
        add(TraitKind::Tag, t, t, format!("都有标签「{t}」"));
    }
    out.into_iter()
        .map(|((kind, key), (name, label))| Trait {
            kind,
            key,
            name,
            label,
        })
        .collect()
}

/// The sparse dimension of a trait key: FNV-1a (32 bits) of its bytes, the same on every run
/// and every machine.
pub fn dimension(key: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The traits of the index ([`TraitKind::in_index`]) as a sparse vector: each kind's weight,
/// scaled as all the traits are (to unit length). Two keys of one hash (vanishingly rare) share
/// their dimension.
pub fn sparse(traits: &[Trait]) -> Sparse {
    let norm = norm(traits.iter().map(|t| t.kind));
    let mut dims: BTreeMap<u32, f32> = BTreeMap::new();
    for t in traits.iter().filter(|t| t.kind.in_index()) {
        *dims.entry(dimension(&t.key)).or_default() += value(t.kind, norm);
    }
    Sparse {
        indices: dims.keys().copied().collect(),
        values: dims.values().copied().collect(),
    }
}

/// The length of the unscaled vector of a customer's traits of these kinds (one per trait):
/// what each value is divided by.
pub fn norm(kinds: impl IntoIterator<Item = TraitKind>) -> f32 {
    kinds
        .into_iter()
        .map(|k| k.weight().powi(2))
        .sum::<f32>()
        .sqrt()
}

/// The value of a trait of `kind` for a customer whose traits have the length `norm`.
pub fn value(kind: TraitKind, norm: f32) -> f32 {
    kind.weight() / norm
}

/// Qdrant's inverse document frequency of a dimension that `df` of `n` points have.
pub fn idf(n: u64, df: u64) -> f32 {
    let (n, df) = (n as f32, df as f32);
    ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::snapshot::BoughtItem;

    fn item(kind: &str, code: &str, name: &str, doctor: Option<(&str, &str)>) -> BoughtItem {
        BoughtItem {
            kind: kind.into(),
            code: code.into(),
            name: name.into(),
            category: (kind == "project").then(|| "注射".into()),
            doctor_code: doctor.map(|d| d.0.into()),
            doctor_name: doctor.map(|d| d.1.into()),
        }
    }

    #[test]
    fn traits_are_what_was_had_and_by_whom_never_the_notes() {
        let p = SearchProfile {
            id: 1,
            code: "C1".into(),
            institution_id: 1,
            vip_level: Some("金卡".into()),
            tags: vec!["敏感肌".into()],
            opted_out: false,
            projects: vec!["玻尿酸填充".into()],
            products: vec!["玻尿酸精华液".into()],
            items: vec![
                item("project", "P1", "玻尿酸填充", Some(("D1", "王晓雯"))),
                item("project", "P1", "玻尿酸填充", Some(("D1", "王晓雯"))),
                item("product", "G1", "玻尿酸精华液", None),
            ],
        };
        let t = of(&p);
        let labels: Vec<&str> = t.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "都做过 玻尿酸填充",
                "都买过 玻尿酸精华液",
                "都由 王晓雯 医生做 玻尿酸填充",
                "都找 王晓雯 医生看过",
                "都有「注射」类的消费",
                "同为金卡",
                "都有标签「敏感肌」",
            ]
        );
        let v = sparse(&t);
        // The project, the product and the project by its doctor are in the index; the doctor,
        // the category, the level and the tag re-rank.
        assert_eq!(v.indices.len(), 3);
        assert!(!v.indices.contains(&dimension("d:D1")));
        let length: f32 = v.values.iter().map(|x| x * x).sum::<f32>().sqrt();
        let all: f32 = (1.0f32 + 0.64 + 0.25 + 0.09 + 0.16 + 0.04 + 0.04).sqrt();
        assert!((length - (1.0f32 + 0.64 + 0.25).sqrt() / all).abs() < 1e-5);
        let n = norm(t.iter().map(|t| t.kind));
        assert!(
            (value(TraitKind::ProjectWithDoctor, n)
                - v.values[v
                    .indices
                    .iter()
                    .position(|i| *i == dimension("pd:P1@D1"))
                    .unwrap()])
            .abs()
                < 1e-6
        );
        assert!(value(TraitKind::Project, n) > value(TraitKind::Tag, n) * 4.9);
        assert!(!t.iter().any(|t| t.key == "t:怕痛"));
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "玻尿酸填充",
                "玻尿酸精华液",
                "玻尿酸填充",
                "王晓雯",
                "注射",
                "金卡",
                "敏感肌"
            ]
        );
        assert_eq!(
            TraitKind::of_key("pd:P1@D1"),
            Some(TraitKind::ProjectWithDoctor)
        );
        assert_eq!(TraitKind::of_key("怕痛"), None);
        // Rarer weighs more.
        assert!(idf(1000, 5) > idf(1000, 500));
        assert_eq!(dimension("p:P1"), dimension("p:P1"));
        assert_ne!(dimension("p:P1"), dimension("p:P2"));
    }
}
