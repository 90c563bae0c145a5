//! Revisit: customer follow-up (回访) for medical-aesthetics clinic chains, as durable jobs in
//! PostgreSQL. See README.md for the tour; each module's doc says its role.

pub mod analytics;
pub mod api;
pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod consent;
pub mod domain;
pub mod handlers;
pub mod import;
pub mod llm;
pub mod metrics;
pub mod notify;
pub mod projections;
pub mod queue;
pub mod report;
pub mod store;
pub mod telemetry;
