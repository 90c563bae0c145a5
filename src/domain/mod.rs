//! Pure types and rules, no I/O: import records and their validation, the birthday window
//! (solar and lunar),
//! the handling of personal data, and the entity snapshots the projections receive.

pub mod birthday;
pub mod compliance;
pub mod consent;
pub mod dashboard;
pub mod delivery;
pub mod followup;
pub mod greeting;
pub mod json_stream;
pub mod lunar;
pub mod names;
pub mod outgoing;
pub mod ownership;
pub mod privacy;
pub mod rate;
pub mod rate_limit;
pub mod records;
pub mod revisit;
pub mod sharing;
pub mod snapshot;
