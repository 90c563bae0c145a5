//! `import.scan`: the hourly check for incremental data. Every file under
//! `incremental/pending` not imported yet (same path and content) goes into one import plan:
//! dated folders in date order, stage by stage. One plan, not one per folder, so a later day's
//! update never overtakes an earlier day's addition, however many workers run. Files already
//! imported are left out, so the scan may run as often as it likes.

use revisit_jobs::{ImportFile, ImportScan};
use sha2::{Digest, Sha256};
use tracing::info;

use super::{Handler, JobCtx, JobError};
use crate::{domain::records::sha256_hex, import::layout, store::enqueue};

impl Handler for ImportScan {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let pending = std::path::Path::new(&ctx.app.settings.app.import_dir)
            .join("incremental")
            .join("pending");
        if !pending.is_dir() {
            info!(folder = %pending.display(), "no incremental folder; nothing to import");
            return Ok(());
        }
        let plan = match layout::plan(&pending) {
            Ok(p) => p,
            Err(layout::LayoutError::Empty(_)) => return Ok(()),
            Err(e) => return Err(JobError::permanent(e)),
        };
        let mut todo = Vec::new();
        let mut fingerprint = Sha256::new();
        for file in plan {
            let bytes = tokio::fs::read(&file.path)
                .await
                .map_err(|e| JobError::retry(anyhow::anyhow!("{}: {e}", file.path)))?;
            let sha = sha256_hex(&bytes);
            if !ctx.app.store.file_imported(&file.path, &sha).await? {
                fingerprint.update(file.path.as_bytes());
                fingerprint.update(sha.as_bytes());
                todo.push(file);
            }
        }
        let Some((first, rest)) = todo.split_first() else {
            info!("incremental import check: nothing new");
            return Ok(());
        };
        let batch: String = fingerprint.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let job = ImportFile {
            source: first.clone(),
            then: rest.to_vec(),
            batch: format!("incremental-{batch}"),
        };
        // Keyed by content: a plan still running is not enqueued a second time.
        let key = Some(job.batch.clone());
        if enqueue(&*ctx.app.store, &ctx.app.settings, &job, key)
            .await?
            .is_some()
        {
            info!(files = todo.len(), batch = %job.batch, "incremental import enqueued");
        }
        Ok(())
    }
}
