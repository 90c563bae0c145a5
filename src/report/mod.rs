//! The daily report's HTML file: built from the day's figures and the dashboard, written under
//! `app.reports_dir` (`data/reports/` by default) as `daily-YYYY-MM-DD.html`.

pub mod charts;
pub mod html;

use std::path::{Path, PathBuf};

use crate::{analytics::Source, domain::dashboard::Dashboard, store::DailyReport};

/// Writes the page for `report` into `dir` (created if missing), replacing a page of the same
/// day whole: it is written beside and renamed, so a reader never sees half a file.
pub fn write(
    dir: &Path,
    report: &DailyReport,
    dashboard: &Dashboard,
    source: Source,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("daily-{}.html", report.date));
    // A name of its own: two processes may write the same day's page at once.
    let tmp = dir.join(format!(
        ".daily-{}.{}.tmp",
        report.date,
        ulid::Ulid::generate().to_string().to_lowercase()
    ));
    std::fs::write(&tmp, html::render(report, dashboard, source))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
