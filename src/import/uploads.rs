//! Files uploaded through the API hold a chain's personal data, so they are not kept: by
//! default each is deleted once its import has ended (imported or refused); with
//! `api.keep_uploads_days` above 0 they are kept that many days and the nightly `jobs.prune`
//! deletes older ones. A batch's folders stay (they are small, hold no data, and say which
//! institution the batch was for).

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use tracing::{info, warn};

/// Deletes `file` if it is an upload under `uploads_dir` and uploads are not kept.
pub fn forget_if_upload(uploads_dir: &str, keep_days: u32, file: &Path) {
    if keep_days > 0 || !is_under(uploads_dir, file) {
        return;
    }
    match std::fs::remove_file(file) {
        Ok(()) => info!(file = %file.display(), "uploaded file deleted after its import"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(file = %file.display(), error = %e, "could not delete the uploaded file"),
    }
}

/// Deletes the uploaded files older than `keep_days` (none when 0: they are deleted at once).
/// Returns how many it deleted.
pub fn prune(uploads_dir: &str, keep_days: u32, now: SystemTime) -> usize {
    if keep_days == 0 {
        return 0;
    }
    let cutoff = now - Duration::from_secs(u64::from(keep_days) * 86_400);
    let mut deleted = 0;
    let mut folders = vec![Path::new(uploads_dir).to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                folders.push(path);
            } else if meta.modified().is_ok_and(|m| m < cutoff)
                && std::fs::remove_file(&path).is_ok()
            {
                deleted += 1;
            }
        }
    }
    deleted
}

fn is_under(dir: &str, file: &Path) -> bool {
    match (std::path::absolute(dir), std::path::absolute(file)) {
        (Ok(dir), Ok(file)) => file.starts_with(dir),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_deleted_after_import_unless_kept_and_then_pruned_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = dir.path().join("uploads");
        let file = uploads
            .join("import-1")
            .join("BJ-HA-001")
            .join("customers.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let elsewhere = dir.path().join("customers.json");
        for f in [&file, &elsewhere] {
            std::fs::write(f, "[]").unwrap();
        }
        let uploads_dir = uploads.display().to_string();
        forget_if_upload(&uploads_dir, 7, &file);
        assert!(file.exists(), "kept for 7 days");
        forget_if_upload(&uploads_dir, 0, &elsewhere);
        assert!(
            elsewhere.exists(),
            "a file given to `revisit import` is the operator's"
        );
        assert_eq!(prune(&uploads_dir, 7, SystemTime::now()), 0);
        let later = SystemTime::now() + Duration::from_secs(8 * 86_400);
        assert_eq!(prune(&uploads_dir, 7, later), 1);
        assert!(!file.exists() && file.parent().unwrap().is_dir());
        std::fs::write(&file, "[]").unwrap();
        forget_if_upload(&uploads_dir, 0, &file);
        assert!(!file.exists(), "deleted once imported by default");
    }
}
