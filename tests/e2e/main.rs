//! Roster end to end: the real gRPC service and SCIM facade, spawned on 127.0.0.1:0 over a
//! real SQLite file and a real PostgreSQL database. Every scenario runs on both backends.

// A test that cannot go on fails loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod authz;
mod bounds;
mod bulk;
mod cli;
mod filter_prop;
mod groups;
mod grpc;
mod harness;
mod limits;
mod listing;
mod plans;
mod protocol;
mod races;
mod replay;
mod roles;
mod shutdown;
mod users;
mod values;
