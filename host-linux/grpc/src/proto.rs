//! The generated messages and services of `heidi.sidecar.v1`: `Sidecar` (what applications
//! call) and `Upstream` (what the sidecar calls). See the proto file for field meanings.
//! Servers decode requests with [`RequestCodec`](super::codec::RequestCodec) (a request that
//! does not decode is INVALID_ARGUMENT); clients use the default codec.

#![allow(missing_docs, unreachable_pub, clippy::all)]

tonic::include_proto!("heidi.sidecar.v1");

mod clients {
    include!(concat!(env!("OUT_DIR"), "/client/heidi.sidecar.v1.rs"));
}

pub use clients::{sidecar_client, upstream_client};
