//! Reading customers on SQLite: birthday candidates and the history a greeting is made from
//! (the same operations as `store::postgres::customers`, with JSON text for lists and
//! `json_each` for `= ANY`).

use chrono::NaiveDate;
use sqlx::SqlitePool;

use super::json;
use crate::{
    domain::greeting::{ConsultationNote, GreetingContext, HistoryItem},
    domain::{birthday::BirthdayWindow, followup::Occasion, lunar::LunarBirthday},
    store::{BirthdayCandidate, StoreResult, directory::ConsultationView},
};

/// A customer's latest `limit` consultation records, newest first, with the names of their
/// projects (in the record's order) and doctor.
pub async fn consultations_of(
    pool: &SqlitePool,
    institution_id: i64,
    customer_id: i64,
    limit: i64,
) -> StoreResult<Vec<ConsultationView>> {
    let rows: Vec<ConsultationRow> = sqlx::query_as(
        "SELECT k.code, k.consult_date, k.channel, k.consultant, d.name AS doctor_name,
                (SELECT json_group_array(name) FROM (
                     SELECT p.name FROM json_each(k.project_codes) AS u
                     JOIN projects p ON p.code = u.value ORDER BY u.key)) AS projects,
                k.content, k.outcome
         FROM consultations k LEFT JOIN doctors d ON d.code = k.doctor_code
         WHERE k.institution_id = ?1 AND k.customer_id = ?2
         ORDER BY k.consult_date DESC, k.code DESC
         LIMIT ?3",
    )
    .bind(institution_id)
    .bind(customer_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ConsultationView {
            code: r.code,
            consult_date: r.consult_date,
            channel: r.channel,
            consultant: r.consultant,
            doctor_name: r.doctor_name,
            projects: r.projects.0,
            content: r.content,
            outcome: r.outcome,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ConsultationRow {
    code: String,
    consult_date: NaiveDate,
    channel: Option<String>,
    consultant: Option<String>,
    doctor_name: Option<String>,
    projects: sqlx::types::Json<Vec<String>>,
    content: Option<String>,
    outcome: Option<String>,
}

pub async fn existing_institutions(
    pool: &SqlitePool,
    wanted: &[String],
) -> StoreResult<Vec<String>> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM institutions WHERE code IN (SELECT value FROM json_each(?1))",
    )
    .bind(json(&wanted))
    .fetch_all(pool)
    .await?;
    Ok(wanted
        .iter()
        .filter(|w| found.contains(w))
        .cloned()
        .collect())
}

/// See the PostgreSQL twin: each institution keeps its own customer's birthday, and a person
/// of several institutions is greeted once, for the birthday of the customer visited last.
pub async fn birthday_candidates(
    pool: &SqlitePool,
    institutions: &[String],
    window: &BirthdayWindow,
) -> StoreResult<Vec<BirthdayCandidate>> {
    Ok(sqlx::query_as(
        "SELECT c.id AS customer_id, c.person_id, c.birthday, c.lunar_birthday
         FROM customers c
         JOIN institutions i ON i.id = c.institution_id
         WHERE i.code IN (SELECT value FROM json_each(?1)) AND i.status = 'active'
           AND ((c.birthday_md IN (SELECT value FROM json_each(?2)) AND c.birthday IS NOT NULL
                 AND c.lunar_birthday IS NULL)
                OR c.lunar_birthday IN (SELECT value FROM json_each(?3)))
           AND NOT EXISTS (SELECT 1 FROM customers o WHERE o.person_id = c.person_id AND o.opted_out)
           AND (NOT c.person_shared
                OR c.id = (SELECT o.id FROM customers o
                           JOIN institutions oi ON oi.id = o.institution_id AND oi.status = 'active'
                           WHERE o.person_id = c.person_id
                             AND (o.birthday IS NOT NULL OR o.lunar_birthday IS NOT NULL)
                           ORDER BY (SELECT max(r.order_date) FROM consumption_records r
                                     WHERE r.customer_id = o.id) DESC NULLS LAST,
                                    o.id
                           LIMIT 1))
         ORDER BY c.id",
    )
    .bind(json(&institutions))
    .bind(json(&window.solar))
    .bind(json(&window.lunar))
    .fetch_all(pool)
    .await?)
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    institution_code: String,
    institution_name: String,
    name: String,
    gender: Option<String>,
    vip_level: Option<String>,
    tags: String,
    notes: Option<String>,
    institution_id: i64,
    lunar_birthday: Option<i16>,
    timezone: Option<String>,
}

type HistoryRow = (
    String,
    String,
    NaiveDate,
    String,
    String,
    i64,
    Option<String>,
);

pub async fn greeting_context(
    pool: &SqlitePool,
    customer_id: i64,
    occasion_date: NaiveDate,
) -> StoreResult<Option<GreetingContext>> {
    let Some(p): Option<ProfileRow> = sqlx::query_as(
        "SELECT i.code AS institution_code, i.name AS institution_name, c.name, c.gender, c.vip_level, c.tags, c.notes,
                c.institution_id, c.lunar_birthday, i.timezone
         FROM customers c
         JOIN institutions i ON i.id = c.institution_id
         WHERE c.id = ?1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let history: Vec<HistoryRow> = sqlx::query_as(
        "SELECT r.order_number, it.item_code, r.order_date, it.item_type, it.item_name,
                it.actual_price_cents, d.name
         FROM consumption_records r
         JOIN consumption_items it
           ON it.institution_id = r.institution_id AND it.order_number = r.order_number
         LEFT JOIN doctors d ON d.code = it.doctor_code
         WHERE r.institution_id = ?1 AND r.customer_id = ?2 AND r.status = 'completed'
         ORDER BY r.order_date DESC, it.line_no
         LIMIT 10",
    )
    .bind(p.institution_id)
    .bind(customer_id)
    .fetch_all(pool)
    .await?;
    let consultations = consultations_of(pool, p.institution_id, customer_id, 3).await?;
    Ok(Some(GreetingContext {
        institution_code: p.institution_code,
        institution_name: p.institution_name,
        institution_timezone: p.timezone,
        full_name: p.name,
        gender: p.gender,
        occasion_date,
        lunar_birthday: p.lunar_birthday.and_then(LunarBirthday::from_code),
        occasion: Occasion::Birthday,
        subject: None,
        day_offset: None,
        vip_level: p.vip_level,
        tags: serde_json::from_str(&p.tags).unwrap_or_default(),
        notes: p.notes,
        history: history
            .into_iter()
            .map(
                |(
                    order_number,
                    item_code,
                    date,
                    item_type,
                    item_name,
                    amount_cents,
                    doctor_name,
                )| {
                    HistoryItem {
                        order_number,
                        item_code,
                        date,
                        item_type,
                        item_name,
                        amount_cents,
                        doctor_name,
                    }
                },
            )
            .collect(),
        consultations: consultations
            .into_iter()
            .map(ConsultationNote::from)
            .collect(),
    }))
}
