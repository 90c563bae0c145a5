//! The job queue: the worker runtime (apalis workers on PostgreSQL or SQLite) and the cron
//! producers. Job rows and their states are described in [`crate::store::JobState`]; inserting
//! jobs is the store's (`Repository::enqueue`, and inside each store's own transactions).

pub mod activity;
pub mod backend;
pub mod cron;
pub mod scans;
pub mod wakeups;
pub mod worker;
