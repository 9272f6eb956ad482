//! The domain of pushplot, free of the `worker` crate so that `cargo test` runs it natively.

pub mod aggregate;
pub mod alert;
pub mod base64;
pub mod bucket;
pub mod chart;
pub mod chunk;
pub mod config;
pub mod damping;
pub mod error;
pub mod expo;
pub mod image;
pub mod ingest;
pub mod job;
pub mod keys;
pub mod names;
pub mod notify;
pub mod push_path;
pub mod query;
pub mod round;
pub mod route;
pub mod schedule;
pub mod svg;
pub mod time;
pub mod url;
