//! smtp-auth-insight: who sends mail through SMTP AUTH, with which TLS
//! version, and whether an account looks compromised.
//!
//! # Layout
//!
//! The modules form layers. A module imports only from its own layer and
//! the layers listed before it, never from a later one, and modules of one
//! layer do not import each other in a cycle: `tests/architecture.rs`
//! reads the `crate::` paths of every source file and fails otherwise.
//! `ARCHITECTURE.md` follows one event through them.
//!
//! 1. Core, pure logic (no files, sockets or clocks of their own). The
//!    first four live in their own crate, `crates/core`, whose manifest
//!    has no I/O dependency, and are re-exported here under their names:
//!    - `event`: the submission event and its validation (JSON, TLS
//!      spellings), counts per TLS class, day and hour numbers.
//!    - `parse`: Postfix and Exim log lines and NDJSON lines to events.
//!    - `detect`: the detectors (volume spikes, new senders, legacy TLS,
//!      failed-login bursts), in event time.
//!    - `report`: the report model, its renderers (CSV, text, templates,
//!      PNG charts), what report and alert templates see, dashboard links.
//!    - `random`: random identifiers; `process`: private files (umask),
//!      handing freed heap back, user and group ids.
//! 2. `store`: sled. Daily and hourly counts per account, the sender
//!    index, idempotency keys, the ingest journal, the detectors' state and
//!    alert log, retention.
//! 3. Services, the daemon's moving parts:
//!    - `ingest`: the single store writer with group commit; an
//!      acknowledged event is on disk.
//!    - `outbox`: the durable mail queue, its transports (SMTP, files) and
//!      progress marks; `reports`: a report from its range to its mail
//!      (built from the store, rendered, composed); `notify`: alert mails and
//!      webhooks; `schedule`: reports mailed on cron schedules.
//!    - `metrics`: what `/metrics` shows; `secret`: passwords and tokens
//!      kept outside the config file.
//!    - `contain`: the accounts the policy service stops: the in-memory
//!      decision as it answers (replicas of the detector state), the
//!      record from the alert log, and their release.
//! 4. Adapters, where the outside comes in:
//!    - `source`: input files, and the followers of mail log files and of
//!      the systemd journal.
//!    - `server`: the HTTP API and the dashboard (axum).
//!    - `policy`: the Postfix policy service (`check_policy_service`), on
//!      a UNIX socket or a port, with who may speak to it.
//! 5. `config`: the TOML file, checked key by key; it hands each component
//!    its part, so no component imports the whole configuration.
//! 6. Entry points: `daemon` wires everything for `run`, starts the parts
//!    that follow the file again on SIGHUP, and drains it in order on
//!    `shutdown`'s signal; `cli` is the command line (`main.rs` only calls
//!    it).

// The lint holds the surface narrow: an item is `pub` only where the
// binary, the tests or the benchmarks reach it, else `pub(crate)`.
#![warn(unreachable_pub)]

pub mod cli;
pub mod config;
pub(crate) mod contain;
pub mod daemon;
pub(crate) mod ingest;
pub(crate) mod metrics;
pub(crate) mod notify;
pub mod outbox;
pub(crate) mod policy;
pub(crate) mod process;
pub(crate) mod random;
pub mod reports;
pub(crate) mod schedule;
pub(crate) mod secret;
pub(crate) mod server;
pub(crate) mod shutdown;
pub(crate) mod source;
pub mod store;

// The pure core, in a crate of its own (`crates/core`): here under the
// names the rest of the daemon has always used.
pub use smtp_auth_insight_core::{detect, event, parse, report};
