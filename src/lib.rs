//! pushplot: "POST a number, get a chart". `domain` is the platform-free domain; `platform` is the
//! Cloudflare Worker glue (routes, D1, the scheduled handler) and only exists when built for wasm32.

pub mod domain;

#[cfg(target_arch = "wasm32")]
mod platform;
