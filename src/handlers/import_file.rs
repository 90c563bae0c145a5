//! `import.file`: one JSON file into the store in one transaction, which also enqueues the next
//! file of its plan.

use revisit_jobs::ImportFile;
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{
    domain::records::{parse_file, sha256_hex},
    store::{NewJob, WriteError},
};

impl Handler for ImportFile {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let src = &self.source;
        let bytes = tokio::fs::read(&src.path).await.map_err(|e| {
            let err = anyhow::anyhow!("{}: cannot read: {e}", src.path);
            if e.kind() == std::io::ErrorKind::NotFound {
                JobError::permanent(err)
            } else {
                JobError::retry(err)
            }
        })?;
        let sha = sha256_hex(&bytes);
        let mut parsed = parse_file(src.kind, &src.path, &bytes).map_err(JobError::permanent)?;

        let next = self.then.split_first().map(|(next, rest)| {
            let job = ImportFile {
                source: next.clone(),
                then: rest.to_vec(),
                batch: self.batch.clone(),
            };
            NewJob::of(
                &ctx.app.settings,
                &job,
                Some(format!("{}:{}", self.batch, rest.len())),
            )
        });
        let counts = ctx
            .app
            .store
            .import_file(&self.batch, src, &sha, &mut parsed, next)
            .await
            .map_err(|e| match e {
                WriteError::Db(e) => JobError::retry(e),
                other => JobError::permanent(anyhow::anyhow!("{}: {other}", src.path)),
            })?;

        for e in &parsed.errors {
            warn!(file = %src.path, record = e.record, field = %e.field, problem = %e.message, "record rejected");
        }
        info!(
            file = %src.path,
            total = parsed.total,
            inserted = counts.inserted,
            updated = counts.updated,
            unchanged = counts.unchanged,
            rejected = parsed.errors.len(),
            remaining = self.then.len(),
            "file imported"
        );
        Ok(())
    }
}
