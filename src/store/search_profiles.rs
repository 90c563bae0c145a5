//! What vector search reads of customers: [`SearchProfile`]s, by id or by code.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::snapshot::{BoughtItem, SearchProfile};

#[async_trait]
pub trait SearchProfiles: Send + Sync {
    /// The profiles of these customers (absent ones are left out), in id order.
    async fn search_profiles(&self, customer_ids: &[i64]) -> StoreResult<Vec<SearchProfile>>;
    /// The profile of the customer with this code: its row and its lines read at once (the
    /// latency of `similar` begins here).
    async fn search_profile_of(&self, code: &str) -> StoreResult<Option<SearchProfile>>;
    /// The id of the customer with this code.
    async fn customer_id_of(&self, code: &str) -> StoreResult<Option<i64>>;
}

/// A customer row: id, code, institution, VIP level, tags, opted out.
pub(crate) type ProfileRow<Tags> = (i64, String, i64, Option<String>, Tags, bool);

/// The columns of a [`ProfileRow`], from `customers`; the engine adds its condition.
pub(crate) const PROFILE_SQL: &str =
    "SELECT id, code, institution_id, vip_level, tags, opted_out FROM customers WHERE ";

/// A profile from its row, with nothing bought yet (see [`attach_bought`]).
pub(crate) fn profile(
    (id, code, institution_id, vip_level, tags, opted_out): ProfileRow<Vec<String>>,
) -> SearchProfile {
    SearchProfile {
        id,
        code,
        institution_id,
        vip_level,
        tags,
        opted_out,
        projects: Vec::new(),
        products: Vec::new(),
        items: Vec::new(),
    }
}

/// One line bought by a customer: customer id, `project` or `product`, code, name, the item's
/// category, the doctor's code and name.
pub(crate) type BoughtRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The lines of completed orders of some customers, most recent first, with the item's
/// category and the doctor's name; `{ids}` is where the engine's "customer id in the list"
/// condition goes.
pub(crate) const BOUGHT_SQL: &str =
    "SELECT r.customer_id, it.item_type, it.item_code, it.item_name,
            COALESCE(pj.category, pd.category), it.doctor_code, d.name
     FROM consumption_records r
     JOIN consumption_items it
       ON it.institution_id = r.institution_id AND it.order_number = r.order_number
     LEFT JOIN projects pj ON it.item_type = 'project' AND pj.code = it.item_code
     LEFT JOIN products pd ON it.item_type = 'product' AND pd.code = it.item_code
     LEFT JOIN doctors d ON d.code = it.doctor_code
     WHERE r.customer_id {ids} AND r.status = 'completed'
     ORDER BY r.customer_id, r.order_date DESC, r.order_number, it.line_no";

/// [`BOUGHT_SQL`]'s condition for the one customer of a code, its placeholder `{code}`.
pub(crate) fn bought_by_code_sql(code: &str) -> String {
    BOUGHT_SQL.replace(
        "{ids}",
        &format!("= (SELECT id FROM customers WHERE code = {code})"),
    )
}

/// One customer's profile from its row and its bought lines.
pub(crate) fn profile_with_bought(
    row: ProfileRow<Vec<String>>,
    bought: Vec<BoughtRow>,
) -> SearchProfile {
    let mut profiles = [profile(row)];
    attach_bought(&mut profiles, bought);
    let [p] = profiles;
    p
}

/// Puts each customer's bought lines (rows already most recent first) into their profile.
pub(crate) fn attach_bought(profiles: &mut [SearchProfile], rows: Vec<BoughtRow>) {
    let mut at = std::collections::HashMap::new();
    for (i, p) in profiles.iter().enumerate() {
        at.insert(p.id, i);
    }
    for (customer, kind, code, name, category, doctor_code, doctor_name) in rows {
        let Some(&i) = at.get(&customer) else {
            continue;
        };
        let p = &mut profiles[i];
        let names = if kind == "project" {
            &mut p.projects
        } else {
            &mut p.products
        };
        if !names.contains(&name) {
            names.push(name.clone());
        }
        let seen = p
            .items
            .iter()
            .any(|it| it.kind == kind && it.code == code && it.doctor_code == doctor_code);
        if !seen {
            p.items.push(BoughtItem {
                kind,
                code,
                name,
                category,
                doctor_code,
                doctor_name,
            });
        }
    }
}
