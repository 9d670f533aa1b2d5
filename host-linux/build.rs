//! Generates the gRPC code of `proto/heidi_sidecar.proto` with tonic + prost. `protoc` comes
//! from the `protoc-bin-vendored` crate, so a build needs no system package.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/heidi_sidecar.proto");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/heidi_sidecar.proto"],
        &["proto"],
    )?;
    Ok(())
}
