//! Import through the API: a JSON file in (`POST /api/v1/imports`), an import job out, and its
//! progress with every rejected record (`GET /api/v1/imports/{batch}`).
//!
//! The file is written under `api.uploads_dir/<batch>/<institution or common>/<kind>.json` and
//! imported from there by a worker, exactly as a file given to `revisit import`, so the workers
//! must see the same folder. A staff token may upload its own institution's customers,
//! consumption records and doctors; the chain's files (institutions, projects, products) need an
//! admin token.

use std::{path::PathBuf, sync::Arc};

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{StatusCode, Uri},
};
use revisit_jobs::{ImportFile, ImportKind, ImportSource};
use serde::Serialize;
use utoipa::ToSchema;

use super::body_error;
use crate::{
    api::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorBody},
        params::Params,
    },
    app::App,
    domain::records::RecordError,
    import::layout::kind_of,
    store::enqueue,
};

const KINDS: &[&str] = &[
    "institutions",
    "doctors",
    "projects",
    "products",
    "customers",
    "consumption_records",
    "consultations",
];

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadAnswer {
    /// Follow it at `/api/v1/imports/{batch}`.
    pub batch: String,
    pub kind: String,
    pub institution: Option<String>,
    pub bytes: usize,
}

/// Uploads one JSON file (the request body, as it would sit in the import folder) and enqueues
/// its import.
#[utoipa::path(
    post, path = "/api/v1/imports", tag = "imports",
    params(
        ("kind" = String, Query, description = "institutions、doctors、projects、products、customers、consumption_records、consultations"),
        ("institution" = Option<String>, Query, description = "机构代码：客户、消费记录与咨询记录必填（员工令牌默认自己的机构）"),
    ),
    request_body(content = String, content_type = "application/json", description = "导入文件的原始内容（JSON 数组）"),
    responses(
        (status = 202, body = UploadAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(app): State<Arc<App>>,
    caller: Caller,
    uri: Uri,
    body: Body,
) -> ApiResult<(StatusCode, Json<UploadAnswer>)> {
    let q = Params::of(&uri, &["kind", "institution"])?;
    let kind_name = q
        .choice("kind", KINDS)?
        .ok_or_else(|| ApiError::bad_param("kind", format!("缺少 kind（{}）", KINDS.join("、"))))?;
    let kind = kind_of(&format!("{kind_name}.json")).expect("one of KINDS");
    let per_institution = kind.per_institution() || kind == ImportKind::Doctors;
    if !per_institution {
        caller.require_admin()?;
    }
    let institution = match q.text("institution") {
        Some(code) if per_institution => Some(caller.institution(&app, &code).await?.code),
        Some(_) => {
            return Err(ApiError::bad_param(
                "institution",
                format!("{kind_name} 属于整个连锁，不能指定机构"),
            ));
        }
        None if caller.is_admin() && kind.per_institution() => {
            return Err(ApiError::bad_param(
                "institution",
                "客户与消费记录必须指定机构",
            ));
        }
        None if per_institution => caller.0.institution_code.clone(),
        None => None,
    };
    let batch = format!(
        "upload-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let folder = PathBuf::from(&app.settings.api.uploads_dir)
        .join(&batch)
        .join(institution.as_deref().unwrap_or("common"));
    let path = std::path::absolute(folder.join(format!("{kind_name}.json")))
        .map_err(ApiError::internal)?;
    let limit = app.settings.api.max_upload_mb * 1024 * 1024;
    let written = match save_upload(body, &path, limit).await {
        Ok(n) => n,
        Err(e) => {
            // Nothing of a refused upload is kept.
            let _ = tokio::fs::remove_dir_all(
                PathBuf::from(&app.settings.api.uploads_dir).join(&batch),
            )
            .await;
            return Err(e);
        }
    };
    let job = ImportFile {
        source: ImportSource {
            path: path.display().to_string(),
            kind,
            institution: institution.clone(),
        },
        then: Vec::new(),
        batch: batch.clone(),
    };
    enqueue(&*app.store, &app.settings, &job, Some(batch.clone())).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(UploadAnswer {
            batch,
            kind: kind_name,
            institution,
            bytes: written,
        }),
    ))
}

/// Streams the request body to `path` (whole or not at all: it is written beside it and
/// renamed at the end), so an upload of hundreds of megabytes never sits in memory. Refuses a
/// body that does not start like a JSON array, or that grows past `limit` bytes.
async fn save_upload(body: Body, path: &std::path::Path, limit: u64) -> ApiResult<usize> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;

    let dir = path.parent().expect("a file in a folder");
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(ApiError::internal)?;
    let tmp = path.with_extension("json.part");
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    let mut written = 0usize;
    let mut started = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| body_error(StatusCode::BAD_REQUEST))?;
        if !started && let Some(b) = chunk.iter().find(|b| !b.is_ascii_whitespace()) {
            if *b != b'[' {
                return Err(ApiError::bad_body("文件内容应为 JSON 数组（以 [ 开头）"));
            }
            started = true;
        }
        written += chunk.len();
        if written as u64 > limit {
            return Err(body_error(StatusCode::PAYLOAD_TOO_LARGE));
        }
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    if !started {
        return Err(ApiError::bad_body("文件内容应为 JSON 数组（以 [ 开头）"));
    }
    file.sync_all().await.map_err(ApiError::internal)?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(ApiError::internal)?;
    Ok(written)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileResult {
    /// The file's name within the batch (`BJ-HA-001/customers.json`).
    pub file: String,
    pub total: i32,
    pub inserted: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub rejected: i32,
    /// Every rejected record: its index, its code, the field at fault and why.
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<RecordError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    pub file: String,
    pub done: i64,
    pub total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportState {
    pub batch: String,
    /// queued | running | done | failed
    pub state: String,
    /// The file being imported now.
    pub current: Option<Progress>,
    /// Files imported, with their rejected records.
    pub files: Vec<FileResult>,
    /// Why the import gave up (the file could not be read at all, for instance).
    pub error: Option<String>,
}

/// The progress and result of an import.
#[utoipa::path(
    get, path = "/api/v1/imports/{batch}", tag = "imports",
    params(("batch" = String, Path, description = "上传返回的 batch")),
    responses(
        (status = 200, body = ImportState),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn state(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(batch): Path<String>,
) -> ApiResult<Json<ImportState>> {
    let not_found = || ApiError::not_found("导入批次");
    if batch.is_empty()
        || !batch
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(not_found());
    }
    if !caller.is_admin() && !staff_owns(&app, &caller, &batch).await {
        return Err(not_found());
    }
    let files = app.store.import_log(&batch).await?;
    let current = app.store.file_progress(&batch).await?;
    let error = app.store.dead_import_error(&batch).await?;
    if files.is_empty() && current.is_none() && error.is_none() && !batch_known(&app, &batch).await
    {
        return Err(not_found());
    }
    let state = if error.is_some() {
        "failed"
    } else if current.is_some() {
        "running"
    } else if files.is_empty() {
        "queued"
    } else {
        "done"
    };
    let short = |path: &str| {
        let p = std::path::Path::new(path);
        let parent = p
            .parent()
            .and_then(|d| d.file_name())
            .map(|d| d.to_string_lossy().to_string())
            .unwrap_or_default();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        format!("{parent}/{name}")
    };
    Ok(Json(ImportState {
        state: state.to_owned(),
        current: current.map(|p| Progress {
            file: short(&p.path),
            done: p.done,
            total: p.total,
        }),
        files: files
            .into_iter()
            .map(|f| FileResult {
                file: short(&f.path),
                total: f.total,
                inserted: f.inserted,
                updated: f.updated,
                unchanged: f.unchanged,
                rejected: f.rejected,
                errors: f.errors,
            })
            .collect(),
        error,
        batch,
    }))
}

/// A staff token follows only uploads made for its own institution.
async fn staff_owns(app: &App, caller: &Caller, batch: &str) -> bool {
    let Some(code) = caller.0.institution_code.as_deref() else {
        return false;
    };
    let dir = PathBuf::from(&app.settings.api.uploads_dir).join(batch);
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return false;
    };
    let mut names = Vec::new();
    while let Ok(Some(e)) = entries.next_entry().await {
        names.push(e.file_name().to_string_lossy().to_string());
    }
    names == [code]
}

/// Whether a batch was uploaded here (it may still be waiting for a worker).
async fn batch_known(app: &App, batch: &str) -> bool {
    tokio::fs::try_exists(PathBuf::from(&app.settings.api.uploads_dir).join(batch))
        .await
        .unwrap_or(false)
}
