//! Reading customers on PostgreSQL: birthday candidates and the history a greeting is made from.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};

use crate::{
    domain::greeting::{ConsultationNote, GreetingContext, HistoryItem},
    domain::{birthday::BirthdayWindow, followup::Occasion, lunar::LunarBirthday},
    store::{BirthdayCandidate, directory::ConsultationView},
};

/// A customer's latest `limit` consultation records, newest first, with the names of their
/// projects (in the record's order) and doctor.
pub async fn consultations_of(
    db: impl sqlx::PgExecutor<'_>,
    institution_id: i64,
    customer_id: i64,
    limit: i64,
) -> Result<Vec<ConsultationView>, sqlx::Error> {
    let rows: Vec<ConsultationRow> = sqlx::query_as(
        "SELECT k.code, k.consult_date, k.channel, k.consultant, d.name AS doctor_name,
                ARRAY(SELECT p.name FROM unnest(k.project_codes) WITH ORDINALITY AS u(code, n)
                      JOIN projects p ON p.code = u.code ORDER BY u.n) AS projects,
                k.content, k.outcome
         FROM consultations k LEFT JOIN doctors d ON d.code = k.doctor_code
         WHERE k.institution_id = $1 AND k.customer_id = $2
         ORDER BY k.consult_date DESC, k.code DESC
         LIMIT $3",
    )
    .bind(institution_id)
    .bind(customer_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(ConsultationRow::into_view).collect())
}

#[derive(sqlx::FromRow)]
struct ConsultationRow {
    code: String,
    consult_date: NaiveDate,
    channel: Option<String>,
    consultant: Option<String>,
    doctor_name: Option<String>,
    projects: Vec<String>,
    content: Option<String>,
    outcome: Option<String>,
}

impl ConsultationRow {
    fn into_view(self) -> ConsultationView {
        ConsultationView {
            code: self.code,
            consult_date: self.consult_date,
            channel: self.channel,
            consultant: self.consultant,
            doctor_name: self.doctor_name,
            projects: self.projects,
            content: self.content,
            outcome: self.outcome,
        }
    }
}

/// Active, not opted-out customers of `institutions` whose birthday may be kept in `window`
/// (see [`BirthdayWindow`]). Each institution keeps its own customer's birthday; a person who is
/// a customer of several institutions is greeted once, for the birthday that the institution
/// they visited last knows, so two institutions that disagree never make
/// two birthdays. A person who opted out at any institution is not greeted at all.
///
/// Built for a million customers (`revisit bench scan`): candidates are read from covering
/// indexes, solar and lunar birthdays by a scan each, and the latest visits are looked up only
/// for persons who are customers of more than one institution (`person_shared`, in the index).
/// It runs without parallel workers or JIT: on the machines it is measured on, starting them
/// cost more than they saved (JIT alone added 80 ms to a 120 ms query).
pub async fn birthday_candidates(
    pool: &PgPool,
    institutions: &[String],
    window: &BirthdayWindow,
) -> Result<Vec<BirthdayCandidate>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    let found = sqlx::query_as(
        "WITH cand AS (
             SELECT id, person_id, institution_id, birthday, lunar_birthday, person_shared
             FROM customers
             WHERE birthday_md = ANY($2) AND birthday IS NOT NULL AND lunar_birthday IS NULL
             UNION ALL
             SELECT id, person_id, institution_id, birthday, lunar_birthday, person_shared
             FROM customers
             WHERE lunar_birthday = ANY($3)
         )
         SELECT c.id AS customer_id, c.person_id, c.birthday, c.lunar_birthday
         FROM cand c
         JOIN institutions i ON i.id = c.institution_id
         WHERE i.code = ANY($1) AND i.status = 'active'
           AND NOT EXISTS (SELECT 1 FROM customers o WHERE o.person_id = c.person_id AND o.opted_out)
           AND (NOT c.person_shared
                -- Of the person's customers at active institutions who have a birthday,
                -- the one visited last (then the first imported) greets.
                OR c.id = (SELECT o.id FROM customers o
                           JOIN institutions oi ON oi.id = o.institution_id AND oi.status = 'active'
                           WHERE o.person_id = c.person_id
                             AND (o.birthday IS NOT NULL OR o.lunar_birthday IS NOT NULL)
                           ORDER BY (SELECT max(r.order_date) FROM consumption_records r
                                     WHERE r.institution_id = o.institution_id
                                       AND r.customer_id = o.id) DESC NULLS LAST,
                                    o.id
                           LIMIT 1))
         ORDER BY c.id",
    )
    .bind(institutions)
    .bind(&window.solar)
    .bind(&window.lunar)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(found)
}

/// The codes of `wanted` that exist, in the order given.
pub async fn existing_institutions(
    pool: &PgPool,
    wanted: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let found: Vec<String> =
        sqlx::query_scalar("SELECT code FROM institutions WHERE code = ANY($1)")
            .bind(wanted)
            .fetch_all(pool)
            .await?;
    Ok(wanted
        .iter()
        .filter(|w| found.contains(w))
        .cloned()
        .collect())
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    institution_code: String,
    institution_name: String,
    name: String,
    gender: Option<String>,
    vip_level: Option<String>,
    tags: Vec<String>,
    notes: Option<String>,
    institution_id: i64,
    lunar_birthday: Option<i16>,
    timezone: Option<String>,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    order_number: String,
    item_code: String,
    order_date: NaiveDate,
    item_type: String,
    item_name: String,
    actual_price_cents: i64,
    doctor_name: Option<String>,
}

/// The customer's profile and the latest consumption items (with the doctors who did them).
pub async fn greeting_context(
    conn: &mut PgConnection,
    customer_id: i64,
    occasion_date: NaiveDate,
) -> Result<Option<GreetingContext>, sqlx::Error> {
    let Some(p): Option<ProfileRow> = sqlx::query_as(
        "SELECT i.code AS institution_code, i.name AS institution_name, c.name, c.gender,
                c.vip_level, c.tags, c.notes, c.institution_id, c.lunar_birthday, i.timezone
         FROM customers c
         JOIN institutions i ON i.id = c.institution_id
         WHERE c.id = $1",
    )
    .bind(customer_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let history: Vec<HistoryRow> = sqlx::query_as(
        "SELECT r.order_number, it.item_code, r.order_date, it.item_type, it.item_name,
                it.actual_price_cents, d.name AS doctor_name
         FROM consumption_records r
         JOIN consumption_items it
           ON it.institution_id = r.institution_id AND it.order_number = r.order_number
         LEFT JOIN doctors d ON d.code = it.doctor_code
         WHERE r.institution_id = $1 AND r.customer_id = $2 AND r.status = 'completed'
         ORDER BY r.order_date DESC, it.line_no
         LIMIT 10",
    )
    .bind(p.institution_id)
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let consultations = consultations_of(&mut *conn, p.institution_id, customer_id, 3).await?;
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
        tags: p.tags,
        notes: p.notes,
        history: history
            .into_iter()
            .map(|h| HistoryItem {
                order_number: h.order_number,
                item_code: h.item_code,
                date: h.order_date,
                item_type: h.item_type,
                item_name: h.item_name,
                amount_cents: h.actual_price_cents,
                doctor_name: h.doctor_name,
            })
            .collect(),
        consultations: consultations
            .into_iter()
            .map(ConsultationNote::from)
            .collect(),
    }))
}
