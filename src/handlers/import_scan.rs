//! `import.scan`: the hourly check for incremental data. Every dated folder under
//! `incremental/pending` with a file not yet imported (same path and content) becomes one
//! import plan; files already imported are left out, so the scan may run as often as it likes.

use std::path::Path;

use revisit_jobs::{ImportFile, ImportScan};
use sha2::{Digest, Sha256};
use tracing::info;

use super::{Handler, JobCtx, JobError};
use crate::{layout, store::enqueue};

impl Handler for ImportScan {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let root = Path::new(&ctx.app.settings.app.import_dir);
        let folders = layout::pending_incremental(root).map_err(JobError::retry)?;
        let mut planned = 0;
        for folder in folders {
            let plan = match layout::plan(&folder) {
                Ok(p) => p,
                Err(layout::LayoutError::Empty(_)) => continue,
                Err(e) => return Err(JobError::permanent(e)),
            };
            let mut todo = Vec::new();
            let mut fingerprint = Sha256::new();
            for file in plan {
                let bytes = tokio::fs::read(&file.path)
                    .await
                    .map_err(|e| JobError::retry(anyhow::anyhow!("{}: {e}", file.path)))?;
                let sha: String = Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let done = ctx.app.store.file_imported(&file.path, &sha).await?;
                if !done {
                    fingerprint.update(file.path.as_bytes());
                    fingerprint.update(sha.as_bytes());
                    todo.push(file);
                }
            }
            let Some((first, rest)) = todo.split_first() else {
                continue;
            };
            let batch: String = fingerprint
                .finalize()
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect();
            let job = ImportFile {
                source: first.clone(),
                then: rest.to_vec(),
                batch: format!("incremental-{batch}"),
            };
            // Keyed by content: a plan still running is not enqueued a second time.
            if enqueue(
                &*ctx.app.store,
                &ctx.app.settings,
                &job,
                Some(job.batch.clone()),
            )
            .await?
            .is_some()
            {
                planned += 1;
                info!(folder = %folder.display(), files = todo.len(), "incremental import enqueued");
            }
        }
        info!(planned, "incremental import check done");
        Ok(())
    }
}
