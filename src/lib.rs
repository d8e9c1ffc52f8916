//! smtp-auth-insight: who sends mail through SMTP AUTH, with which TLS
//! version, and whether an account looks compromised.
//!
//! # Layout
//!
//! Modules follow the data flow of the design, one stage each:
//!
//! - `event`: the submission event, and its validation (JSON, TLS spellings).
//! - `source`: where events come from: input files, NDJSON streams.
//! - `ingest`: the single store writer with group commit; an acknowledged
//!   event is on disk (in the ingest journal, then in the counts).
//! - `store`: sled: daily and hourly counts per account (weeks per key),
//!   sender index, idempotency keys, retention; the journal and the fold of
//!   events into the counts.
//! - `counts`: messages per TLS class, the unit of every aggregate.
//! - `detect`: the detectors (volume spikes, new senders, legacy TLS,
//!   failed-login bursts): pure, in event time, fed by the store writer.
//! - `report`: the report model from the store, its renderers and templates.
//! - `notify`: mail: building report and alert messages, the durable outbox
//!   delivering them over SMTP or into files, the alert notifier.
//! - `schedule`: reports mailed on cron schedules.
//! - `server`: the HTTP API (axum) and the dashboard (server-rendered
//!   pages, inline SVG charts, sessions).
//! - `daemon`: wires the stages together for `run`; `shutdown` is its signal.
//! - `config`: the TOML configuration, checked key by key.
//! - `metrics`: counters and histograms behind `/metrics`.
//! - `memory`: handing freed heap back to the system (after large reports,
//!   and periodically).
//! - `token`: the API token, generated on first start when none is configured.
//! - `cli`: the command line; `main.rs` only calls it.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod event;
pub mod ingest;
pub mod mailer;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod parse;
pub mod random;
pub mod report;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod store;
