//! The pure core of smtp-auth-insight: what a submission is and what
//! follows from a stream of them, with no files, sockets, clocks or
//! threads of its own. The daemon crate (the repository's `src/`) reads
//! logs, stores counts, answers Postfix and mails reports around it.
//!
//! # Layout
//!
//! - `event`: the submission event and its validation (JSON, TLS
//!   spellings), counts per TLS class, day and hour numbers, networks of
//!   client addresses.
//! - `parse`: Postfix and Exim log lines and NDJSON lines to events.
//! - `detect`: the detectors (volume spikes, new senders, legacy TLS,
//!   failed-login bursts), in event time, and the replicas of an account's
//!   state the policy service steps ahead of them.
//! - `report`: the report model, its renderers (CSV, text, templates, PNG
//!   charts), what report and alert templates see, dashboard links.
//!
//! Deliberately left out: anything that waits (I/O, locks, the wall clock
//! as a source of truth), and the async stack. The compiler holds that
//! line: none of tokio, sled, axum, hyper, lettre or reqwest is a
//! dependency of this crate.

// An item is `pub` only where the daemon crate, the tests or the
// benchmarks use it; the lint keeps what nothing outside reaches
// `pub(crate)`.
#![warn(unreachable_pub)]

pub mod detect;
pub mod event;
pub mod parse;
pub mod report;
