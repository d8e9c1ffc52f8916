//! Sources: where events come from. Input files (plain, gzip, stdin) and
//! NDJSON event streams; each source turns bytes into validated events.

pub mod input;
pub mod ndjson;
