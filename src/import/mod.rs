//! Importing the chain's JSON files: where they lie ([`layout`]), how one file is read in
//! bounded memory ([`reader`]), and where incremental files go once imported ([`archive`]).
//! The job that runs an import is `handlers::import_file`; the writes are the store's.

pub mod archive;
pub mod layout;
pub mod reader;
