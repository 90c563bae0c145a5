//! Which institution a record belongs to, and the rule that one institution's file never
//! changes another institution's rows.
//!
//! Customer codes and order numbers carry their institution as a prefix (`BJ-HA-001-C0001`,
//! `BJ-HA-001-ORD-20260115-0001`). A per-institution file either sits in a folder named after
//! its institution (`initial/institutions/BJ-HA-001/customers.json`), or directly in a dated
//! folder (`incremental/pending/2026-01-15/customers_add.json`, the seed's layout), and then
//! each record's institution comes from its code's prefix.

/// The institution a record with `code` belongs to, given the folder's institution (if the
/// file sits in one) and the institutions known to the store. `Err` says why it cannot be
/// imported, in words for the error report.
pub fn owner<'a>(
    code: &str,
    folder: Option<&'a str>,
    known: impl IntoIterator<Item = &'a str>,
) -> Result<&'a str, String> {
    // The longest known code that prefixes this one, followed by '-': `BJ-HA-001` for
    // `BJ-HA-001-C0001`, and not `BJ` when both are institutions.
    let by_prefix = known
        .into_iter()
        .filter(|inst| {
            code.len() > inst.len() && code.starts_with(inst) && code[inst.len()..].starts_with('-')
        })
        .max_by_key(|inst| inst.len());
    match (folder, by_prefix) {
        (Some(folder), Some(prefix)) if prefix != folder && !folder.starts_with(prefix) => {
            Err(format!(
                "{code} 带有机构 {prefix} 的前缀，但文件在 {folder} 的文件夹里：一家机构的文件不能修改其他机构的数据"
            ))
        }
        (Some(folder), _) => Ok(folder),
        (None, Some(prefix)) => Ok(prefix),
        (None, None) => Err(format!(
            "无法判断 {code} 属于哪家机构：文件不在某家机构的文件夹里，编号也不以已知的机构代码加 '-' 开头"
        )),
    }
}

/// Whether the file at `path` sits where the layout puts an institution's folder: in a folder
/// whose parent is `institutions` or a dated folder (`2026-01-15`). Only there does an unknown
/// folder name mean an institution that was not imported.
pub fn in_institution_slot(path: &str) -> bool {
    let path = std::path::Path::new(path);
    let Some(slot) = path.parent().and_then(|folder| folder.parent()) else {
        return false;
    };
    let name = slot.file_name().unwrap_or_default().to_string_lossy();
    name == "institutions" || chrono::NaiveDate::parse_from_str(&name, "%Y-%m-%d").is_ok()
}

/// The error for a row that exists under another institution.
pub fn belongs_elsewhere(what: &str, code: &str, owner: &str, file_institution: &str) -> String {
    format!("{what} {code} 属于机构 {owner}：{file_institution} 的文件不能修改它")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_layout_s_places_hold_institution_folders() {
        assert!(in_institution_slot(
            "data/import/initial/institutions/XX-9/customers.json"
        ));
        assert!(in_institution_slot(
            "pending/2026-01-15/XX-9/customers_add.json"
        ));
        assert!(!in_institution_slot("/home/it/exports/customers.json"));
        assert!(!in_institution_slot("customers.json"));
    }

    const KNOWN: [&str; 3] = ["BJ-HA-001", "SH-ML-002", "BJ"];

    #[test]
    fn the_folder_decides_when_there_is_one() {
        assert_eq!(owner("C0001", Some("BJ-HA-001"), KNOWN), Ok("BJ-HA-001"));
        assert_eq!(
            owner("BJ-HA-001-C0001", Some("BJ-HA-001"), KNOWN),
            Ok("BJ-HA-001")
        );
    }

    #[test]
    fn another_institution_s_prefix_in_a_folder_is_refused() {
        let e = owner("SH-ML-002-C0001", Some("BJ-HA-001"), KNOWN).unwrap_err();
        assert!(e.contains("SH-ML-002") && e.contains("BJ-HA-001"), "{e}");
    }

    #[test]
    fn without_a_folder_the_longest_prefix_decides() {
        assert_eq!(owner("BJ-HA-001-C0001", None, KNOWN), Ok("BJ-HA-001"));
        assert_eq!(owner("BJ-C0001", None, KNOWN), Ok("BJ"));
        assert!(owner("GZ-001-C1", None, KNOWN).is_err());
        // A prefix must end at a '-': BJ-HA-0010-C1 is not BJ-HA-001's.
        assert_eq!(owner("BJ-HA-0010-C1", None, KNOWN), Ok("BJ"));
    }
}
