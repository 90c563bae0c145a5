//! Pure types and rules, no I/O: import records and their validation, the birthday window,
//! and the handling of personal data.

pub mod birthday;
pub mod delivery;
pub mod json_stream;
pub mod ownership;
pub mod privacy;
pub mod records;
