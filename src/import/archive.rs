//! Moving incremental files out of `incremental/pending/` once they are imported, so that the
//! hourly scan does not read every old file again forever: to `incremental/processed/…` when
//! the file was imported (with `<name>.errors.json` beside it when records were rejected), to
//! `incremental/failed/…` when it could not be (with the reason beside it). The path below
//! `pending/` is kept (`pending/2026-01-15/customers_add.json` →
//! `processed/2026-01-15/customers_add.json`); a name taken already gets a number.
//! Files imported from anywhere else are left where they are.

use std::path::{Path, PathBuf};

use crate::domain::records::RecordError;

/// Where a file ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Failed,
}

impl Outcome {
    fn folder(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Failed => "failed",
        }
    }
}

/// The path of `file` below `<import_dir>/incremental/pending`, if it lies there.
pub fn pending_relative(import_dir: &Path, file: &Path) -> Option<PathBuf> {
    let pending = import_dir
        .join("incremental")
        .join("pending")
        .canonicalize()
        .ok()?;
    let file = file.canonicalize().ok()?;
    file.strip_prefix(&pending).ok().map(Path::to_path_buf)
}

/// Moves `file` (if it lies in `pending/`) to its outcome's folder, with `errors` written
/// beside it when there are any. Returns where it went; `None` when it stays.
pub fn archive(
    import_dir: &Path,
    file: &Path,
    outcome: Outcome,
    errors: &[RecordError],
) -> std::io::Result<Option<PathBuf>> {
    let Some(relative) = pending_relative(import_dir, file) else {
        return Ok(None);
    };
    let base = import_dir
        .join("incremental")
        .join(outcome.folder())
        .join(&relative);
    let mut target = base.clone();
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = base.with_extension(format!("{n}.json"));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(file, &target)?;
    if !errors.is_empty() {
        let report = serde_json::to_vec_pretty(errors).expect("errors serialise");
        std::fs::write(target.with_extension("errors.json"), report)?;
    }
    // A dated folder left empty goes too; `pending/` itself stays.
    let pending = import_dir.join("incremental").join("pending");
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d.canonicalize().ok() == pending.canonicalize().ok() || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_files_move_with_their_report_and_others_stay() {
        let root = tempfile::tempdir().unwrap();
        let day = root.path().join("incremental/pending/2026-01-15");
        std::fs::create_dir_all(&day).unwrap();
        let file = day.join("customers_add.json");
        std::fs::write(&file, "[]").unwrap();
        let err = RecordError {
            record: 0,
            key: None,
            field: "(file)".into(),
            message: "bad".into(),
        };
        let went = archive(root.path(), &file, Outcome::Failed, &[err])
            .unwrap()
            .unwrap();
        assert_eq!(
            went,
            root.path()
                .join("incremental/failed/2026-01-15/customers_add.json")
        );
        assert!(went.with_extension("errors.json").exists());
        assert!(!day.exists(), "the empty dated folder is removed");
        assert!(root.path().join("incremental/pending").exists());
        // The same name again gets a number.
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(&file, "[]").unwrap();
        let again = archive(root.path(), &file, Outcome::Failed, &[])
            .unwrap()
            .unwrap();
        assert!(again.ends_with("customers_add.2.json"), "{again:?}");
        // A file elsewhere stays where it is.
        let other = root.path().join("x.json");
        std::fs::write(&other, "[]").unwrap();
        assert_eq!(
            archive(root.path(), &other, Outcome::Processed, &[]).unwrap(),
            None
        );
        assert!(other.exists());
    }
}
