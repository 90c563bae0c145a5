//! `revisit import`: plan the files of a path and enqueue them as one chain of `import.file` jobs.

use std::{path::Path, sync::Arc, time::Duration};

use revisit_jobs::{ImportFile, Job};

use super::wait;
use crate::app::App;

/// Enqueues the plan for `path` (a relative path is resolved here, where the command runs: the
/// worker that imports it may run elsewhere) and, with `--wait`, follows it.
pub async fn import(app: &Arc<App>, path: &Path, wait_for_it: bool) -> anyhow::Result<()> {
    let (batch, files) = crate::import::enqueue_plan(app, path).await?;
    println!("📥 已加入导入队列：{files} 个文件（批次 {batch}）");
    if wait_for_it {
        wait::warn_if_no_worker(app, ImportFile::QUEUE).await?;
        wait::import_batch(app, &batch, files, Duration::from_secs(600)).await?;
        wait::print_import_summary(app, &batch).await?;
    } else {
        println!("   由 worker 执行；查看进度：revisit jobs list --kind import.file");
    }
    Ok(())
}
