//! The import folder layout of the seed document, turned into an ordered import plan.
//!
//! ```text
//! <import_dir>/initial/common/{institutions,doctors,projects,products}.json
//! <import_dir>/initial/institutions/<CODE>/{customers,consumption_records,consultations}.json
//! <import_dir>/incremental/pending/<YYYY-MM-DD>/
//!     institutions.json, doctors.json, ...           (common files, optional)
//!     customers_add.json, customers_update.json      (the seed's layout: each record's
//!     consumption_records*.json                       institution from its code's prefix)
//!     <CODE>/customers_add.json, ...                 (or in a folder named after the institution)
//! ```
//! A plan lists files stage by stage (institutions, then doctors/projects/products, then
//! customers, then consumption records and consultations), so every file finds the rows it
//! refers to. A file's
//! dated folder is its place in time ([`source_seq`]): an older file never undoes what a newer
//! one wrote, whatever order they are imported in.

use std::path::{Path, PathBuf};

use revisit_jobs::{ImportKind, ImportSource};

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{0}: no such file or folder")]
    Missing(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{0}: no import files found (expected the layout described in `revisit import --help`)"
    )]
    Empty(String),
    #[error("{0}: cannot tell what this file holds from its name")]
    UnknownFile(String),
}

/// What a file holds, by its name: `customers.json`, `customers_add.json`,
/// `consumption_records_update.json`...
pub fn kind_of(file_name: &str) -> Option<ImportKind> {
    let stem = file_name.strip_suffix(".json")?;
    let base = ["_add", "_update", "_new", "_changed"]
        .iter()
        .find_map(|s| stem.strip_suffix(s))
        .unwrap_or(stem);
    Some(match base {
        "institutions" => ImportKind::Institutions,
        "doctors" => ImportKind::Doctors,
        "projects" => ImportKind::Projects,
        "products" => ImportKind::Products,
        "customers" => ImportKind::Customers,
        "consumption_records" => ImportKind::ConsumptionRecords,
        "consultations" => ImportKind::Consultations,
        _ => return None,
    })
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, LayoutError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LayoutError::Io {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

/// `2026-01-15` → 20260115.
fn date_seq(name: &str) -> Option<i32> {
    chrono::NaiveDate::parse_from_str(name, "%Y-%m-%d")
        .ok()
        .map(|d| d.format("%Y%m%d").to_string().parse().expect("digits"))
}

/// The institution a folder is named after, if it is one: not a dated folder and not a word of
/// the layout itself.
fn institution_folder(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_string_lossy().to_string();
    let layout_word = matches!(
        name.as_str(),
        "import"
            | "initial"
            | "incremental"
            | "pending"
            | "processed"
            | "failed"
            | "common"
            | "institutions"
            | "data"
    );
    (!layout_word && date_seq(&name).is_none()).then_some(name)
}

/// A file's place in time: the date of the last dated folder (`YYYY-MM-DD`) on its path, as
/// YYYYMMDD; 0 (older than any date) for files outside dated folders, such as the initial load.
pub fn source_seq(path: &Path) -> i32 {
    path.components()
        .rev()
        .find_map(|c| date_seq(&c.as_os_str().to_string_lossy()))
        .unwrap_or(0)
}

/// Every JSON file under `dir`, depth first in name order. A per-institution file (customers,
/// consumption records) belongs to the institution its folder is named after; one in a dated
/// folder has its institution read from each record's code.
fn scan_folder(dir: &Path, out: &mut Vec<ImportSource>) -> Result<(), LayoutError> {
    for path in read_dir_sorted(dir)? {
        if path.is_dir() {
            scan_folder(&path, out)?;
        } else {
            push_file(&path, institution_folder(dir).as_deref(), out)?;
        }
    }
    Ok(())
}

fn push_file(
    path: &Path,
    institution: Option<&str>,
    out: &mut Vec<ImportSource>,
) -> Result<(), LayoutError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if !name.ends_with(".json") {
        return Ok(());
    }
    let kind =
        kind_of(&name).ok_or_else(|| LayoutError::UnknownFile(path.display().to_string()))?;
    out.push(ImportSource {
        path: path.display().to_string(),
        kind,
        // Doctors may sit in an institution's folder too: then they are that institution's.
        institution: if kind.per_institution() || kind == ImportKind::Doctors {
            institution.map(str::to_owned)
        } else {
            None
        },
    });
    Ok(())
}

/// The ordered plan for a file or a folder of the layout.
pub fn plan(path: &Path) -> Result<Vec<ImportSource>, LayoutError> {
    if !path.exists() {
        return Err(LayoutError::Missing(path.display().to_string()));
    }
    let mut files = Vec::new();
    if path.is_dir() {
        scan_folder(path, &mut files)?;
    } else {
        // A single per-institution file takes its institution from its folder's name.
        let inst = path.parent().and_then(institution_folder);
        push_file(path, inst.as_deref(), &mut files)?;
    }
    if files.is_empty() {
        return Err(LayoutError::Empty(path.display().to_string()));
    }
    // Stable: within a stage, the folder order (dates ascending, then names) is kept.
    files.sort_by_key(|f| f.kind.stage());
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_incremental_folder_is_in_the_seed_s_layout() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/import/incremental");
        let plan = plan(&dir).unwrap();
        assert_eq!(plan.len(), 2);
        assert!(plan.iter().all(|f| f.institution.is_none()));
        assert!(plan[0].path.ends_with("2026-01-15/customers_add.json"));
    }

    #[test]
    fn the_seed_s_dated_layout_has_no_institution_folder_and_a_place_in_time() {
        let root = tempfile::tempdir().unwrap();
        let day = root.path().join("incremental/pending/2026-01-15");
        std::fs::create_dir_all(day.join("SH-ML-002")).unwrap();
        std::fs::write(day.join("customers_add.json"), "[]").unwrap();
        std::fs::write(day.join("customers_update.json"), "[]").unwrap();
        std::fs::write(day.join("SH-ML-002/consumption_records.json"), "[]").unwrap();
        let plan = plan(&root.path().join("incremental/pending")).unwrap();
        let got: Vec<(String, Option<&str>)> = plan
            .iter()
            .map(|f| {
                (
                    Path::new(&f.path)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .to_string(),
                    f.institution.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("customers_add.json".into(), None),
                ("customers_update.json".into(), None),
                ("consumption_records.json".into(), Some("SH-ML-002")),
            ]
        );
        assert_eq!(source_seq(Path::new(&plan[0].path)), 20260115);
        assert_eq!(
            source_seq(Path::new(
                "data/import/initial/institutions/BJ/customers.json"
            )),
            0
        );
    }

    #[test]
    fn names_map_to_kinds() {
        assert_eq!(kind_of("customers_add.json"), Some(ImportKind::Customers));
        assert_eq!(
            kind_of("consumption_records.json"),
            Some(ImportKind::ConsumptionRecords)
        );
        assert_eq!(kind_of("notes.json"), None);
        assert_eq!(kind_of("customers.csv"), None);
    }

    #[test]
    fn the_sample_data_plans_in_stage_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/import/initial");
        let plan = plan(&dir).unwrap();
        let stages: Vec<u8> = plan.iter().map(|f| f.kind.stage()).collect();
        let mut sorted = stages.clone();
        sorted.sort();
        assert_eq!(stages, sorted);
        assert_eq!(plan[0].kind, ImportKind::Institutions);
        assert!(
            plan.iter()
                .filter(|f| f.kind.per_institution())
                .all(|f| f.institution.is_some())
        );
    }
}
