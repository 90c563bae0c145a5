//! Revisits on PostgreSQL. The unique key (person, occasion, date, test mode) is what makes
//! "never greet anyone twice" hold however often a scan runs and whichever institution the person
//! visited last; the send claim (see [`crate::domain::delivery`]) makes one delivery per revisit.

use super::*;

use std::time::Duration;

use chrono::{DateTime, Utc};
use revisit_jobs::{GreetingGenerate, MessageSend};
use sqlx::PgPool;

use super::jobs;
use crate::{
    domain::followup::FrequencyCap,
    domain::{
        delivery::{self, ClaimDecision, SendOutcome, SendState},
        followup::Occasion,
    },
    store::{
        Created, NewJob, NewRevisit, RECIPIENT_SELECT, REVISIT_VIEW_SELECT, Recipient,
        RecipientRow, Revisit, RevisitView, SavedGreeting, StoreResult,
    },
};

pub async fn create(
    pool: &PgPool,
    found: &[NewRevisit],
    test_mode: bool,
    greeting_max_attempts: i32,
    cap: FrequencyCap,
) -> StoreResult<Created> {
    let mut tx = pool.begin().await?;
    let mut out = Created::default();
    let marketing = Occasion::marketing();
    for new in found {
        if cap.applies(new.occasion, test_mode) {
            // The person's row lock makes concurrent scans count one after another.
            sqlx::query("SELECT 1 FROM persons WHERE id = $1 FOR UPDATE")
                .bind(new.person_id)
                .execute(&mut *tx)
                .await?;
            let recent: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM revisits
                 WHERE person_id = $1 AND NOT test_mode AND occasion = ANY($2)
                   AND status NOT IN ('failed', 'skipped')
                   AND created_at >= now() - $3 * interval '1 day'
                   AND (occasion, occasion_date) IS DISTINCT FROM ($4, $5)",
            )
            .bind(new.person_id)
            .bind(&marketing)
            .bind(f64::from(cap.days))
            .bind(new.occasion.as_str())
            .bind(new.occasion_date)
            .fetch_one(&mut *tx)
            .await?;
            if recent >= i64::from(cap.max) {
                out.capped += 1;
                continue;
            }
        }
        // No conflict target: either unique key (per person, or the older per customer) means
        // this occasion is taken care of already.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO revisits (customer_id, person_id, occasion, occasion_date, test_mode, send_key,
                 order_number, item_code, day_offset, asks_score)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT DO NOTHING
             RETURNING id",
        )
        .bind(new.customer_id)
        .bind(new.person_id)
        .bind(new.occasion.as_str())
        .bind(new.occasion_date)
        .bind(test_mode)
        .bind(format!("revisit-{}", ulid::Ulid::generate()))
        .bind(&new.order_number)
        .bind(&new.item_code)
        .bind(new.day_offset)
        .bind(new.asks_score)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id {
            jobs::insert(
                &mut tx,
                &NewJob::for_revisit(
                    &GreetingGenerate { revisit_id: id },
                    greeting_max_attempts,
                    id,
                ),
            )
            .await?;
            out.created += 1;
        }
    }
    tx.commit().await?;
    Ok(out)
}

pub async fn get(pool: &PgPool, id: i64) -> StoreResult<Option<Revisit>> {
    Ok(sqlx::query_as("SELECT * FROM revisits WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

pub async fn save_greeting(
    pool: &PgPool,
    g: SavedGreeting<'_>,
    send_max_attempts: i32,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let existing: Option<Option<String>> =
        sqlx::query_scalar("SELECT message FROM revisits WHERE id = $1 FOR UPDATE")
            .bind(g.revisit_id)
            .fetch_optional(&mut *tx)
            .await?;
    if !matches!(existing, Some(None)) {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE revisits SET status = 'generated', message = $2, generated_by = $3, model = $4,
             channel = $5, compliance = $6, generated_at = now(), last_error = NULL, updated_at = now(),
             approval = CASE WHEN $7 THEN 'pending' END
         WHERE id = $1",
    )
    .bind(g.revisit_id)
    .bind(g.message)
    .bind(g.generated_by)
    .bind(g.model)
    .bind(g.channel)
    .bind(g.compliance)
    .bind(g.needs_approval)
    .execute(&mut *tx)
    .await?;
    if g.needs_approval {
        // Its sending is enqueued by the approval.
        tx.commit().await?;
        return Ok(true);
    }
    let mut send = NewJob::for_revisit(
        &MessageSend {
            revisit_id: g.revisit_id,
        },
        send_max_attempts,
        g.revisit_id,
    );
    send.run_at = g.send_at;
    jobs::insert(&mut tx, &send).await?;
    tx.commit().await?;
    Ok(true)
}

/// Marks a revisit failed (unless it was sent or skipped). One that was `sending` may have been
/// delivered: it is flagged so that nobody retries it blindly.
pub async fn mark_failed(pool: &PgPool, id: i64, error: &str, permanent: bool) -> StoreResult<()> {
    Ok(sqlx::query(
        "UPDATE revisits SET status = 'failed', last_error = $2, failure_permanent = $3, updated_at = now(),
             delivery_uncertain = delivery_uncertain OR status IN ('sending', 'submitted')
         WHERE id = $1 AND status NOT IN ('sent', 'skipped')",
    )
    .bind(id)
    .bind(error)
    .bind(permanent)
    .execute(pool)
    .await
    .map(|_| ())?)
}

/// (status, has a message, lease end, the server's now) of a revisit being claimed.
type ClaimRow = (String, bool, Option<DateTime<Utc>>, DateTime<Utc>);

pub async fn claim_send(
    pool: &PgPool,
    id: i64,
    token: &str,
    lease: Duration,
    dedups: bool,
) -> StoreResult<ClaimDecision> {
    let mut tx = pool.begin().await?;
    let row: Option<ClaimRow> = sqlx::query_as(
        "SELECT status, message IS NOT NULL, send_lease_until, now() FROM revisits
         WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((status, has_message, lease_until, now)) = row else {
        return Ok(ClaimDecision::NoMessage);
    };
    let state = SendState {
        status,
        has_message,
        lease_until,
    };
    let decision = delivery::decide(&state, now, dedups);
    match decision {
        ClaimDecision::Claim { .. } => {
            sqlx::query(
                "UPDATE revisits SET status = 'sending', send_token = $2,
                     send_lease_until = now() + $3 * interval '1 millisecond',
                     send_attempts = send_attempts + 1, delivery_uncertain = false, updated_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .bind(token)
            .bind(lease.as_millis() as i64)
            .execute(&mut *tx)
            .await?;
        }
        ClaimDecision::Uncertain => {
            sqlx::query(
                "UPDATE revisits SET status = 'failed', delivery_uncertain = true, send_token = NULL,
                     send_lease_until = NULL, last_error = $2, updated_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .bind(delivery::UNCERTAIN_MESSAGE)
            .execute(&mut *tx)
            .await?;
        }
        _ => {}
    }
    tx.commit().await?;
    Ok(decision)
}

pub async fn finish_send(
    pool: &PgPool,
    id: i64,
    token: &str,
    outcome: &SendOutcome,
) -> StoreResult<bool> {
    let (status, error) = outcome.status();
    let done = sqlx::query(
        "UPDATE revisits SET status = $3, last_error = CASE WHEN $3 = 'sent' THEN NULL ELSE COALESCE($4, last_error) END, updated_at = now(),
             sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END,
             send_token = CASE WHEN $3 = 'sending' THEN send_token END,
             send_lease_until = CASE WHEN $3 = 'sending' THEN now() END
         WHERE id = $1 AND send_token = $2",
    )
    .bind(id)
    .bind(token)
    .bind(status)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn outgoing(pool: &PgPool, r: &Revisit, channel: &str) -> StoreResult<Recipient> {
    let row: Option<RecipientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RECIPIENT_SELECT}
         LEFT JOIN suppressions s ON s.phone = p.phone AND s.channel IN ('*', $2)
         WHERE c.id = $1
         ORDER BY s.channel = '*' DESC LIMIT 1"
    )))
    .bind(r.customer_id)
    .bind(channel)
    .fetch_optional(pool)
    .await?;
    Ok(Recipient::of(r, row))
}

pub async fn since(pool: &PgPool, since: DateTime<Utc>) -> StoreResult<Vec<RevisitView>> {
    let rows: Vec<RevisitView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REVISIT_VIEW_SELECT}
         WHERE r.created_at >= $1 ORDER BY r.occasion_date, r.id"
    )))
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(RevisitView::masked).collect())
}

pub async fn progress(pool: &PgPool, since: DateTime<Utc>) -> StoreResult<RevisitProgress> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status IN ('pending', 'generated', 'sending')
                                 AND approval IS DISTINCT FROM 'pending') AS open,
                count(*) AS \"all\"
         FROM revisits WHERE created_at >= $1",
    )
    .bind(since)
    .fetch_one(pool)
    .await?)
}

#[async_trait::async_trait]
impl crate::store::revisits::Revisits for PgStore {
    async fn existing_institutions(&self, wanted: &[String]) -> StoreResult<Vec<String>> {
        Ok(customers::existing_institutions(&self.pool, wanted).await?)
    }

    async fn birthday_candidates(
        &self,
        institutions: &[String],
        window: &BirthdayWindow,
    ) -> StoreResult<Vec<BirthdayCandidate>> {
        Ok(customers::birthday_candidates(&self.pool, institutions, window).await?)
    }

    async fn create_revisits(
        &self,
        found: &[NewRevisit],
        test_mode: bool,
        greeting_max_attempts: i32,
        cap: FrequencyCap,
    ) -> StoreResult<Created> {
        revisits::create(&self.pool, found, test_mode, greeting_max_attempts, cap).await
    }

    async fn revisit(&self, id: i64) -> StoreResult<Option<Revisit>> {
        revisits::get(&self.pool, id).await
    }

    async fn names_of_others(
        &self,
        customer_id: i64,
        candidates: &[String],
    ) -> StoreResult<Vec<String>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT o.name FROM customers me
             JOIN customers o ON o.institution_id = me.institution_id AND o.person_id <> me.person_id
             WHERE me.id = $2 AND o.name = ANY($1) ORDER BY o.name",
        )
        .bind(candidates)
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn greeting_context(
        &self,
        customer_id: i64,
        occasion_date: NaiveDate,
    ) -> StoreResult<Option<GreetingContext>> {
        let mut conn = self.pool.acquire().await?;
        Ok(customers::greeting_context(&mut conn, customer_id, occasion_date).await?)
    }

    async fn save_greeting(
        &self,
        greeting: SavedGreeting<'_>,
        send_max_attempts: i32,
    ) -> StoreResult<bool> {
        revisits::save_greeting(&self.pool, greeting, send_max_attempts).await
    }

    async fn mark_revisit_failed(&self, id: i64, error: &str, permanent: bool) -> StoreResult<()> {
        revisits::mark_failed(&self.pool, id, error, permanent).await
    }

    async fn outgoing(&self, revisit: &Revisit, channel: &str) -> StoreResult<Recipient> {
        revisits::outgoing(&self.pool, revisit, channel).await
    }

    async fn claim_send(
        &self,
        id: i64,
        token: &str,
        lease: Duration,
        dedups: bool,
    ) -> StoreResult<ClaimDecision> {
        revisits::claim_send(&self.pool, id, token, lease, dedups).await
    }

    async fn finish_send(&self, id: i64, token: &str, outcome: &SendOutcome) -> StoreResult<bool> {
        revisits::finish_send(&self.pool, id, token, outcome).await
    }

    async fn revisits_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<RevisitView>> {
        revisits::since(&self.pool, since).await
    }

    async fn revisit_progress(&self, since: DateTime<Utc>) -> StoreResult<RevisitProgress> {
        revisits::progress(&self.pool, since).await
    }
}
