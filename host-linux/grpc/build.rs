//! Generates the gRPC code of `proto/heidi_sidecar.proto` with tonic + prost. `protoc` comes
//! from the `protoc-bin-vendored` crate, so a build needs no system package.
//!
//! Two passes: the messages and the servers, whose codec answers a request that does not
//! decode with INVALID_ARGUMENT (`crate::codec::RequestCodec`); then the clients alone
//! (in `OUT_DIR/client`, over the same messages), with the default codec, so a reply that
//! does not decode stays INTERNAL (the server's fault, not the caller's).

use std::path::PathBuf;

const PROTO: &str = "proto/heidi_sidecar.proto";

fn prost_config() -> Result<prost_build::Config, Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    Ok(config)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    tonic_prost_build::configure()
        .build_client(false)
        .codec_path("crate::codec::RequestCodec")
        .compile_with_config(prost_config()?, &[PROTO], &["proto"])?;
    let clients = PathBuf::from(std::env::var("OUT_DIR")?).join("client");
    std::fs::create_dir_all(&clients)?;
    tonic_prost_build::configure()
        .build_server(false)
        .out_dir(&clients)
        .extern_path(".heidi.sidecar.v1", "crate::proto")
        .compile_with_config(prost_config()?, &[PROTO], &["proto"])?;
    Ok(())
}
