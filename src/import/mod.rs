//! Importing the chain's JSON files: where they lie ([`layout`]), how one file is read in
//! bounded memory ([`reader`]), where incremental files go once imported ([`archive`]), and
//! how long uploaded files are kept ([`uploads`]).
//! The job that runs an import is `handlers::import_file`; the writes are the store's.

pub mod archive;
pub mod layout;
pub mod reader;
pub mod uploads;

use std::path::Path;

use revisit_jobs::ImportFile;

use crate::{app::App, store::enqueue};

/// The sample chain shipped with the project (`revisit demo`, the console's 导入示例数据). It
/// lies outside `app.import_dir`, so no import ever moves it: an incremental file is moved
/// to `processed/` only from the import folder's own `incremental/pending/`.
pub const SAMPLE_DATA: &str = "examples/import/initial";

/// Enqueues the import of a file or a folder of the layout: the first file's job, carrying
/// the rest of the plan. Returns the batch (to follow it) and the number of files.
pub async fn enqueue_plan(app: &App, path: &Path) -> anyhow::Result<(String, usize)> {
    let path = std::path::absolute(path)?;
    let plan = layout::plan(&path)?;
    let files = plan.len();
    let batch = format!(
        "import-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let (first, rest) = plan.split_first().expect("a plan is never empty");
    let job = ImportFile {
        source: first.clone(),
        then: rest.to_vec(),
        batch: batch.clone(),
    };
    enqueue(&*app.store, &app.settings, &job, Some(batch.clone())).await?;
    Ok((batch, files))
}
