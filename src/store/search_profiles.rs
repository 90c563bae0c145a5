//! What vector search reads of customers: [`SearchProfile`]s, by id or by code.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::snapshot::SearchProfile;

#[async_trait]
pub trait SearchProfiles: Send + Sync {
    /// The profiles of these customers (absent ones are left out), in id order.
    async fn search_profiles(&self, customer_ids: &[i64]) -> StoreResult<Vec<SearchProfile>>;
    /// The id of the customer with this code.
    async fn customer_id_of(&self, code: &str) -> StoreResult<Option<i64>>;
}

/// A customer row: id, code, institution, VIP level, tags, opted out.
pub(crate) type ProfileRow<Tags> = (i64, String, i64, Option<String>, Tags, bool);

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
    }
}

/// One item name bought by a customer: customer id, `project` or `product`, name.
pub(crate) type BoughtRow = (i64, String, String);

/// Puts each customer's bought names (rows already most recent first) into their profile.
pub(crate) fn attach_bought(profiles: &mut [SearchProfile], rows: Vec<BoughtRow>) {
    let mut at = std::collections::HashMap::new();
    for (i, p) in profiles.iter().enumerate() {
        at.insert(p.id, i);
    }
    for (customer, kind, name) in rows {
        let Some(&i) = at.get(&customer) else {
            continue;
        };
        let list = if kind == "project" {
            &mut profiles[i].projects
        } else {
            &mut profiles[i].products
        };
        if !list.contains(&name) {
            list.push(name);
        }
    }
}
