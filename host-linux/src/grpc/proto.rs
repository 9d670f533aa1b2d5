//! The generated messages and services of `heidi.sidecar.v1`: `Sidecar` (what applications
//! call) and `Upstream` (what the sidecar calls). See the proto file for field meanings.

#![allow(missing_docs, unreachable_pub, clippy::all)]

tonic::include_proto!("heidi.sidecar.v1");
