//! What can go wrong in the primary store, said in the terms its callers decide by: whether
//! trying again can help. The driver's error stays inside (as the source, for logs); callers
//! see only the kind and the message.

use std::fmt;

/// Why a store operation failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database could not be reached, ran out of connections or resources, or is
    /// restarting: the same operation later may well succeed.
    Unavailable,
    /// Another writer got in the way (a serialization failure, a deadlock, a lock that could not
    /// be taken, SQLite's busy database): the same operation again may succeed.
    Conflict,
    /// The data breaks a rule of the schema (a unique key, a foreign key, not null, a check, a
    /// value out of range) or cannot be read as the code expects: the same operation will fail
    /// the same way, so it is not retried.
    Data,
    /// Anything else the driver reports. Retried within the job's attempts: the cause is not
    /// known to be permanent.
    Other,
}

impl StoreErrorKind {
    /// What staff read before the database's own words (a job's error in the console).
    pub fn words(self) -> &'static str {
        match self {
            Self::Unavailable => "数据库暂时不可用，稍后自动重试",
            Self::Conflict => "与其他写入冲突，稍后自动重试",
            Self::Data => "数据不符合数据库的规则，重试无济于事",
            Self::Other => "数据库出错",
        }
    }
}

/// A failed store operation.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    source: sqlx::Error,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether trying the same operation again may succeed (everything but bad data).
    pub fn is_retryable(&self) -> bool {
        self.kind != StoreErrorKind::Data
    }

    /// The database's own words for a refused statement (without the driver's prefix).
    pub fn database_message(&self) -> Option<&str> {
        match &self.source {
            sqlx::Error::Database(db) => Some(db.message()),
            _ => None,
        }
    }

    /// An error of the store's own making (an answer that breaks the store's rules).
    pub(crate) fn protocol(message: String) -> Self {
        sqlx::Error::Protocol(message).into()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(source: sqlx::Error) -> Self {
        Self {
            kind: kind_of(&source),
            source,
        }
    }
}

/// PostgreSQL's SQLSTATE classes and codes, SQLite's primary result codes.
fn kind_of(e: &sqlx::Error) -> StoreErrorKind {
    use StoreErrorKind::*;
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Unavailable,
        sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => Data,
        sqlx::Error::Database(db) => {
            if is_data_error(e) {
                return Data;
            }
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                return match &code[..2] {
                    // connection exception, insufficient resources, operator intervention
                    // (shutdown, cannot connect now), system error
                    "08" | "53" | "57" | "58" => Unavailable,
                    // transaction rollback (serialization, deadlock), lock not available
                    "40" => Conflict,
                    _ if code == "55P03" => Conflict,
                    _ => Other,
                };
            }
            // SQLite: BUSY (5), LOCKED (6) are another writer; IOERR (10), FULL (13),
            // CANTOPEN (14) the file system.
            match db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff)
            {
                Some(5 | 6) => Conflict,
                Some(10 | 13 | 14) => Unavailable,
                _ => Other,
            }
        }
        _ => Other,
    }
}

/// A database error that retrying cannot fix: a constraint the record breaks, or a value the
/// engine refuses (PostgreSQL's SQLSTATE classes 22, data exception, and 23; SQLite's
/// constraint, too-big and mismatch results).
fn is_data_error(e: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(db) => {
            if !matches!(db.kind(), ErrorKind::Other) {
                return true; // unique, foreign key, not null, check
            }
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                return pg.code().starts_with("22") || pg.code().starts_with("23");
            }
            // SQLite's extended result code; its low byte is the primary one.
            db.code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 18..=20 | 25))
        }
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_cannot_be_reached_is_worth_retrying_and_bad_data_is_not() {
        let down = StoreError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(down.kind(), StoreErrorKind::Unavailable);
        assert!(down.is_retryable());
        let bad = StoreError::from(sqlx::Error::Decode("not a date".into()));
        assert_eq!(bad.kind(), StoreErrorKind::Data);
        assert!(!bad.is_retryable());
        let other = StoreError::protocol("odd answer".into());
        assert_eq!(other.kind(), StoreErrorKind::Other);
        assert!(other.is_retryable());
    }
}
