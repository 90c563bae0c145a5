//! Integration tests against a real PostgreSQL (see harness.rs). One binary, so one link.

mod harness;

mod api;
mod browser;
mod channels;
mod cli;
mod concurrency;
mod connections;
mod consent;
mod consultations;
mod cron;
mod followups;
mod graph;
mod greeting;
mod import;
mod import_rules;
mod layers;
mod metrics;
mod projections;
mod qdrant_server;
mod queue;
mod rate_limits;
mod reminders;
mod report;
mod runtime;
mod send;
mod sending;
mod store_errors;
mod store_jobs;
mod vectors;
mod wecom;
