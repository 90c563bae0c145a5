//! Shared rate limits on SQLite: the processes share one machine, so its clock (Unix seconds,
//! bound from here); each statement is atomic under SQLite's single writer.

use std::time::Duration;

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::{
    StoreResult,
    rate_limits::{RateLimits, seconds},
};

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[async_trait]
impl RateLimits for SqliteStore {
    async fn reserve_start(
        &self,
        name: &str,
        interval: Duration,
        max_wait: Duration,
    ) -> StoreResult<Result<Duration, Duration>> {
        let (interval, max_wait) = (interval.as_secs_f64(), max_wait.as_secs_f64());
        for _ in 0..2 {
            let at = now();
            let start: Option<f64> = sqlx::query_scalar(
                "UPDATE rate_limits SET tat = max(tat, ?2) + ?3
                  WHERE name = ?1 AND max(tat, ?2) <= ?2 + ?4
              RETURNING tat - ?3",
            )
            .bind(name)
            .bind(at)
            .bind(interval)
            .bind(max_wait)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(start) = start {
                return Ok(Ok(seconds(start - now())));
            }
            let next: Option<f64> =
                sqlx::query_scalar("SELECT tat FROM rate_limits WHERE name = ?1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
            match next {
                Some(tat) => return Ok(Err(seconds(tat - now()))),
                None => {
                    sqlx::query(
                        "INSERT INTO rate_limits (name, tat) VALUES (?1, ?2)
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .bind(now())
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(Err(seconds(max_wait)))
    }

    async fn take_slot(
        &self,
        name: &str,
        slots: u32,
        holder: &str,
        lease: Duration,
    ) -> StoreResult<Option<i32>> {
        sqlx::query(
            "WITH RECURSIVE n(slot) AS (SELECT 0 UNION ALL SELECT slot + 1 FROM n WHERE slot + 1 < ?2)
             INSERT INTO rate_slots (name, slot) SELECT ?1, slot FROM n WHERE true
             ON CONFLICT (name, slot) DO NOTHING",
        )
        .bind(name)
        .bind(slots as i32)
        .execute(&self.pool)
        .await?;
        let at = now();
        Ok(sqlx::query_scalar(
            "UPDATE rate_slots SET holder = ?3, until = ?4 + ?5
              WHERE name = ?1 AND slot = (
                    SELECT slot FROM rate_slots
                     WHERE name = ?1 AND slot < ?2 AND (holder IS NULL OR until < ?4)
                     ORDER BY slot LIMIT 1)
          RETURNING slot",
        )
        .bind(name)
        .bind(slots as i32)
        .bind(holder)
        .bind(at)
        .bind(lease.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn free_slot(&self, name: &str, slot: i32, holder: &str) -> StoreResult<()> {
        Ok(sqlx::query(
            "UPDATE rate_slots SET holder = NULL, until = NULL
              WHERE name = ?1 AND slot = ?2 AND holder = ?3",
        )
        .bind(name)
        .bind(slot)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map(|_| ())?)
    }
}
