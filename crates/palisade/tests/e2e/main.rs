//! End-to-end tests: the real server on a free loopback port, spoken to
//! through TLS (trusting the CA it created) with real HTTP and WebSocket
//! clients. Every test runs on SQLite, and on PostgreSQL too when
//! `PALISADE_TEST_POSTGRES_URL` is set.

mod support;

mod api_keys;
mod audit;
mod binary;
mod canned;
mod chat_flow;
mod encryption;
mod holds;
mod identity;
mod malformed;
mod notes;
mod operator;
mod partners;
mod permissions;
mod routing;
mod settings;
mod team;
mod tenancy;
mod vault;
mod waf;
mod webhooks;
mod widget_settings;
