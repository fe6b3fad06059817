//! The `palisade` binary's library: configuration, start-up wiring and the
//! demo tenant. `main.rs` only parses the command line and calls in here, so
//! the end-to-end tests start exactly what an operator starts.

pub mod app;
pub mod auditcmd;
pub mod config;
pub mod demo;
pub mod keycmd;
pub mod operatorcmd;
pub mod pkicmd;
pub mod telemetry;
mod tlswatch;
pub mod vaultcmd;
