//! `import.file`: one JSON file into the store, then the next file of its plan.
//!
//! The file is read twice as a stream, off the async runtime (see [`crate::import::reader`]):
//! once to validate it, once to hand its valid records to the store in chunks. A file that
//! cannot be imported at all (not found, not JSON, not UTF-8, cut short) fails for good at
//! once, is logged with its reason, and does not stop the files after it: its plan goes on.
//! Incremental files leave `pending/` when they are done (see [`crate::import::archive`]).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use revisit_jobs::ImportFile;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{
    domain::records::RecordError,
    import::{archive, layout::source_seq, reader},
    store::{FileImport, NewJob, WriteError},
};

/// The job of the next file of the plan, keyed so that it exists once.
fn next_job(job: &ImportFile, ctx: &JobCtx<'_>) -> Option<NewJob> {
    job.then.split_first().map(|(next, rest)| {
        let next = ImportFile {
            source: next.clone(),
            then: rest.to_vec(),
            batch: job.batch.clone(),
        };
        NewJob::of(
            &ctx.app.settings,
            &next,
            Some(format!("{}:{}", job.batch, rest.len())),
        )
    })
}

/// Notes every second how many records have gone to the writer, for `import --wait`.
fn report_progress(
    ctx: &JobCtx<'_>,
    batch: &str,
    path: &str,
    sent: Arc<AtomicUsize>,
    total: usize,
) -> tokio::task::JoinHandle<()> {
    let store = ctx.app.store.clone();
    let (batch, path) = (batch.to_owned(), path.to_owned());
    tokio::spawn(async move {
        let mut last = usize::MAX;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let done = sent.load(Ordering::Relaxed);
            if done != last {
                // Progress is a courtesy: a failed note never fails the import.
                let _ = store
                    .note_file_progress(&batch, &path, done as i64, total as i64)
                    .await;
                last = done;
            }
        }
    })
}

/// Whether this file of the batch is logged already.
async fn already_logged(job: &ImportFile, ctx: &JobCtx<'_>) -> Result<bool, JobError> {
    Ok(ctx
        .app
        .store
        .import_log(&job.batch)
        .await?
        .iter()
        .any(|r| r.path == job.source.path))
}

impl Handler for ImportFile {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let src = &self.source;
        let path = PathBuf::from(&src.path);
        if !path.exists() && already_logged(self, ctx).await? {
            // Imported and moved out of `pending/` by an earlier run that died before its end.
            return Ok(());
        }
        let kind = src.kind;
        let p = path.clone();
        let checked = tokio::task::spawn_blocking(move || reader::check(&p, kind))
            .await
            .map_err(|e| JobError::retry(anyhow::anyhow!("读取 {} 失败：{e}", src.path)))?
            .map_err(|e| JobError::permanent(anyhow::anyhow!("{}", e.message)))?;
        info!(file = %src.path, records = checked.total, rejected = checked.rejected, "file checked; writing");

        let (tx, mut rx) = mpsc::channel(2);
        let (p, c) = (path.clone(), checked.clone());
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let sender = tokio::task::spawn_blocking(move || {
            reader::send(&p, kind, &c, reader::CHUNK_RECORDS, &tx, &counter)
        });
        let reporter = report_progress(ctx, &self.batch, &src.path, sent, checked.total);
        let file = FileImport {
            batch: &self.batch,
            source: src,
            sha256: &checked.sha256,
            total: checked.total,
            read_errors: &checked.errors,
            read_rejected: checked.rejected,
            source_seq: source_seq(&path),
        };
        let written = ctx
            .app
            .store
            .import_file(&file, &mut rx, next_job(self, ctx))
            .await;
        drop(rx);
        let _ = sender.await;
        reporter.abort();
        let imported = written.map_err(|e| match e {
            WriteError::Db(e) => JobError::from(e),
            WriteError::File(e) => JobError::retry(anyhow::anyhow!("{e}")),
            other => JobError::permanent(anyhow::anyhow!("{other}")),
        })?;

        let rejected = checked.rejected + imported.errors.len();
        for e in checked.errors.iter().chain(&imported.errors).take(20) {
            warn!(file = %src.path, record = e.record, field = %e.field, problem = %e.message, "record rejected");
        }
        info!(
            file = %src.path,
            total = checked.total,
            inserted = imported.counts.inserted,
            updated = imported.counts.updated,
            unchanged = imported.counts.unchanged,
            rejected,
            remaining = self.then.len(),
            "file imported"
        );
        crate::metrics::import_file("imported");
        crate::metrics::import_rows("inserted", imported.counts.inserted as u64);
        crate::metrics::import_rows("updated", imported.counts.updated as u64);
        crate::metrics::import_rows("unchanged", imported.counts.unchanged as u64);
        crate::metrics::import_rows("rejected", rejected as u64);
        let errors = crate::store::reported_errors(&checked.errors, &imported.errors);
        move_out(ctx, &path, archive::Outcome::Processed, &errors);
        Ok(())
    }

    /// A file that cannot be imported is logged with its reason, leaves `pending/` for
    /// `failed/`, and its plan goes on with the next file.
    async fn on_dead(&self, ctx: &JobCtx<'_>, error: &str, _permanent: bool) {
        crate::metrics::import_file("refused");
        let src = &self.source;
        let reason = RecordError {
            record: 0,
            key: None,
            field: crate::domain::records::FILE_FIELD.into(),
            message: format!("整个文件未导入：{error}"),
        };
        let file = FileImport {
            batch: &self.batch,
            source: src,
            sha256: "",
            total: 0,
            read_errors: std::slice::from_ref(&reason),
            read_rejected: 0,
            source_seq: source_seq(Path::new(&src.path)),
        };
        let (tx, mut rx) = mpsc::channel(1);
        drop(tx);
        if let Err(e) = ctx
            .app
            .store
            .import_file(&file, &mut rx, next_job(self, ctx))
            .await
        {
            warn!(file = %src.path, error = %e, "could not log the failed file or go on with the next one");
            return;
        }
        move_out(
            ctx,
            Path::new(&src.path),
            archive::Outcome::Failed,
            &[reason],
        );
    }
}

fn move_out(ctx: &JobCtx<'_>, path: &Path, outcome: archive::Outcome, errors: &[RecordError]) {
    let api = &ctx.app.settings.api;
    crate::import::uploads::forget_if_upload(&api.uploads_dir, api.keep_uploads_days, path);
    match archive::archive(
        Path::new(&ctx.app.settings.app.import_dir),
        path,
        outcome,
        errors,
    ) {
        Ok(Some(to)) => info!(file = %path.display(), to = %to.display(), "moved out of pending"),
        Ok(None) => {}
        Err(e) => {
            warn!(file = %path.display(), error = %e, "could not move the file out of pending; the next scan skips it as imported")
        }
    }
}
