//! One module per feature of the API; each handler takes the request's `Ctx` and answers.

pub mod alerts;
pub mod channels;
pub mod charts;
pub mod embed;
pub mod images;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod metrics;
