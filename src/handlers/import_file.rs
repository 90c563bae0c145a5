//! `import.file`: one JSON file into Postgres in one transaction, then the next file of its plan.

use revisit_jobs::{ImportFile, ImportSource};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{
    db::import::{WriteError, write},
    domain::records::parse_file,
    queue::{EnqueueOptions, enqueue},
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
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut parsed = parse_file(src.kind, &src.path, &bytes).map_err(JobError::permanent)?;

        let mut tx = ctx.app.pool.begin().await?;
        let counts = write(&mut tx, src.institution.as_deref(), &mut parsed)
            .await
            .map_err(|e| match e {
                WriteError::Db(e) => JobError::retry(e),
                other => JobError::permanent(anyhow::anyhow!("{}: {other}", src.path)),
            })?;
        sqlx::query(
            "INSERT INTO import_log (batch, path, kind, institution, file_sha256, total, inserted,
                 updated, unchanged, rejected, errors)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&self.batch)
        .bind(&src.path)
        .bind(src.kind.as_str())
        .bind(&src.institution)
        .bind(&sha)
        .bind(parsed.total as i32)
        .bind(counts.inserted as i32)
        .bind(counts.updated as i32)
        .bind(counts.unchanged as i32)
        .bind(parsed.errors.len() as i32)
        .bind(sqlx::types::Json(&parsed.errors))
        .execute(&mut *tx)
        .await?;
        if let Some((next, rest)) = self.then.split_first() {
            enqueue_next(&mut tx, ctx, &self.batch, next, rest).await?;
        }
        tx.commit().await?;

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

/// The next file of the plan, enqueued on the transaction that commits this file.
async fn enqueue_next(
    conn: &mut sqlx::PgConnection,
    ctx: &JobCtx<'_>,
    batch: &str,
    next: &ImportSource,
    rest: &[ImportSource],
) -> Result<(), sqlx::Error> {
    let job = ImportFile {
        source: next.clone(),
        then: rest.to_vec(),
        batch: batch.to_owned(),
    };
    let key = format!("{batch}:{}", rest.len());
    enqueue(conn, &ctx.app.settings, &job, EnqueueOptions::keyed(key)).await?;
    Ok(())
}
