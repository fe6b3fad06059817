//! `palisade-bench`: drives a running Palisade (or a peer server) like real
//! traffic and reports what it measured. Every load loop here is bounded in
//! count and time, and every target is an address the operator names; the
//! scripts in `bench/` only ever name loopback servers they started.
//!
//! Latencies are measured open-loop: each send has an intended time fixed by
//! the wall-clock schedule, and latency counts from that time, so a stalled
//! server shows up as latency instead of as a quietly lower send rate.
//!
//! This crate must not reach into server internals except in [`smoke`],
//! which starts Palisade in-process the way the end-to-end tests do.

pub mod ceiling;
pub mod chat;
pub mod fanout;
pub mod handshake;
pub mod https;
pub mod idle;
pub mod pace;
pub mod procfs;
pub mod setup;
pub mod smoke;
pub mod stats;
pub mod tally;
pub mod target;
pub mod tls;
