//! The wire contract of Roster: package `roster.v1`.
//!
//! Everything here is generated from `roster/v1/roster.proto`; see that file for the semantics of
//! each message and RPC.

/// Generated types and clients/servers of `roster.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("roster.v1");
}

/// The encoded `FileDescriptorSet` of `roster.v1` (and the well-known types it imports), for
/// gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/roster_descriptor.bin"));

/// The largest `page_size` of a list request (larger ones are clamped): the SCIM facade's
/// default `maxResults` too.
pub const MAX_PAGE_SIZE: i32 = 1000;

/// The `page_size` of a list request that names none.
pub const DEFAULT_PAGE_SIZE: i32 = 100;
