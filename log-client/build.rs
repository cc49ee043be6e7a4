//! Generates the `log.v1` API from `proto/log/v1/log.proto` with protox (a
//! pure-Rust protobuf compiler: no `protoc` on any machine) and
//! tonic-prost-build. The server side is generated only with the `server`
//! feature. The encoded descriptor set is written beside the code for
//! server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("..").join("proto");
    let file = root.join("log").join("v1").join("log.proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let fds = protox::compile([&file], [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("log_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    let server = std::env::var_os("CARGO_FEATURE_SERVER").is_some();
    tonic_prost_build::configure()
        .bytes(".")
        .build_client(true)
        .build_server(server)
        .compile_fds(fds)?;
    Ok(())
}
