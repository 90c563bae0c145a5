//! The store's errors as both engines raise them: bad data is never worth retrying, another
//! writer in the way is (src/store/error.rs).

use revisit::{
    config::Backend,
    store::{DbPool, StoreError, StoreErrorKind},
};

use crate::harness::*;

crate::on_both_backends!(the_engines_errors_are_sorted_by_whether_retrying_helps);

async fn the_engines_errors_are_sorted_by_whether_retrying_helps(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let duplicate =
        "INSERT INTO institutions (code, name) VALUES ('DUP-001', 'a'), ('DUP-001', 'b')";
    let missing_column = "SELECT no_such_column FROM institutions";
    let (dup, missing): (sqlx::Error, sqlx::Error) = match &env.app.pool {
        DbPool::Postgres(p) => (
            sqlx::query(duplicate).execute(p).await.unwrap_err(),
            sqlx::query(missing_column).execute(p).await.unwrap_err(),
        ),
        DbPool::Sqlite(p) => (
            sqlx::query(duplicate).execute(p).await.unwrap_err(),
            sqlx::query(missing_column).execute(p).await.unwrap_err(),
        ),
    };
    let dup = StoreError::from(dup);
    assert_eq!(dup.kind(), StoreErrorKind::Data, "{dup}");
    assert!(!dup.is_retryable());
    assert!(dup.database_message().is_some());
    // Not known to be permanent (a schema being migrated): retried within the job's attempts.
    let missing = StoreError::from(missing);
    assert_eq!(missing.kind(), StoreErrorKind::Other, "{missing}");
    assert!(missing.is_retryable());

    if let DbPool::Postgres(p) = &env.app.pool {
        // A table another transaction holds, with no wait allowed: another writer in the way.
        let mut holder = p.begin().await.unwrap();
        sqlx::query("LOCK TABLE institutions IN SHARE MODE")
            .execute(&mut *holder)
            .await
            .unwrap();
        let mut other = p.begin().await.unwrap();
        sqlx::query("SET LOCAL lock_timeout = '50ms'")
            .execute(&mut *other)
            .await
            .unwrap();
        let blocked = sqlx::query("LOCK TABLE institutions IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *other)
            .await
            .unwrap_err();
        let blocked = StoreError::from(blocked);
        assert_eq!(blocked.kind(), StoreErrorKind::Conflict, "{blocked}");
        assert!(blocked.is_retryable());
    }
}
