//! Shared rate limits on PostgreSQL, on the server's clock (every host sees the same time).

use std::time::Duration;

use async_trait::async_trait;

use super::PgStore;
use crate::store::{
    StoreResult,
    rate_limits::{RateLimits, seconds},
};

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[async_trait]
impl RateLimits for PgStore {
    async fn reserve_start(
        &self,
        name: &str,
        interval: Duration,
        max_wait: Duration,
    ) -> StoreResult<Result<Duration, Duration>> {
        for _ in 0..2 {
            // The start is the later of the reserved time and now; it is taken if it is within
            // max_wait, and the next one moves an interval on.
            let taken: Option<f64> = sqlx::query_scalar(
                "UPDATE rate_limits
                    SET tat = GREATEST(tat, clock_timestamp()) + make_interval(secs => $2)
                  WHERE name = $1
                    AND GREATEST(tat, clock_timestamp()) <= clock_timestamp() + make_interval(secs => $3)
              RETURNING EXTRACT(EPOCH FROM (tat - make_interval(secs => $2)) - clock_timestamp())::float8",
            )
            .bind(name)
            .bind(secs(interval))
            .bind(secs(max_wait))
            .fetch_optional(&self.pool)
            .await?;
            if let Some(wait) = taken {
                return Ok(Ok(seconds(wait)));
            }
            let next: Option<f64> = sqlx::query_scalar(
                "SELECT EXTRACT(EPOCH FROM GREATEST(tat, clock_timestamp()) - clock_timestamp())::float8
                   FROM rate_limits WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
            match next {
                Some(wait) => return Ok(Err(seconds(wait))),
                None => {
                    sqlx::query(
                        "INSERT INTO rate_limits (name, tat) VALUES ($1, clock_timestamp())
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(Err(max_wait))
    }

    async fn take_slot(
        &self,
        name: &str,
        slots: u32,
        holder: &str,
        lease: Duration,
    ) -> StoreResult<Option<i32>> {
        // Slots are created on first use, and more when the setting grows.
        sqlx::query(
            "INSERT INTO rate_slots (name, slot) SELECT $1, generate_series(0, $2 - 1)
             ON CONFLICT (name, slot) DO NOTHING",
        )
        .bind(name)
        .bind(slots as i32)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_scalar(
            "UPDATE rate_slots SET holder = $3, until = clock_timestamp() + make_interval(secs => $4)
              WHERE name = $1 AND slot = (
                    SELECT slot FROM rate_slots
                     WHERE name = $1 AND slot < $2 AND (holder IS NULL OR until < clock_timestamp())
                     ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING slot",
        )
        .bind(name)
        .bind(slots as i32)
        .bind(holder)
        .bind(secs(lease))
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn free_slot(&self, name: &str, slot: i32, holder: &str) -> StoreResult<()> {
        Ok(sqlx::query(
            "UPDATE rate_slots SET holder = NULL, until = NULL
              WHERE name = $1 AND slot = $2 AND holder = $3",
        )
        .bind(name)
        .bind(slot)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map(|_| ())?)
    }
}
