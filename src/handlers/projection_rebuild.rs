//! Rebuilding a projection from the primary store: not a job itself but what `revisit sync
//! --full` and the API's initialisation both do. Drops and recreates the projection's tables,
//! then queues a sync job for every entity, kind by kind; the workers do the rest.

use revisit_jobs::{EntityKind, KindInfo, ProjectionDispatch, ProjectionName, ProjectionSync};

use crate::{app::App, store};

/// Recreates `name`'s tables and queues the sync of every entity; `progress` hears each kind's
/// running count. Returns how many entities were queued.
pub async fn rebuild(
    app: &App,
    name: ProjectionName,
    mut progress: impl FnMut(EntityKind, u64),
) -> anyhow::Result<u64> {
    let projection = app
        .projections
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("{} 未配置", name.as_str()))?;
    app.store.register_projection(name).await?;
    projection.reset().await?;
    let attempts = app
        .settings
        .policy(&KindInfo::of::<ProjectionSync>())
        .max_attempts as i32;
    let mut total = 0u64;
    // A person's state reaches the projections through its customers.
    for kind in EntityKind::ALL
        .iter()
        .filter(|k| **k != EntityKind::Person && name.rebuilds(**k))
    {
        let mut after = None;
        let mut n = 0u64;
        while let Some(page) = app
            .store
            .enqueue_full_sync(name, *kind, after.clone(), attempts)
            .await?
        {
            n += page.entities;
            after = Some(page.last_key);
            progress(*kind, n);
        }
        total += n;
    }
    store::enqueue(
        app.store.as_ref(),
        &app.settings,
        &ProjectionDispatch {},
        None,
    )
    .await?;
    Ok(total)
}

/// What staff call a kind of entity.
pub fn label(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Institution => "机构",
        EntityKind::Doctor => "医生",
        EntityKind::Project => "项目",
        EntityKind::Product => "产品",
        EntityKind::Person => "人员",
        EntityKind::Customer => "客户",
        EntityKind::Order => "订单",
        EntityKind::Revisit => "回访",
    }
}
