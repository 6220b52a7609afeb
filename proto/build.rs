//! Generates the Rust code of the gRPC contracts with protox, so that building needs no system `protoc`.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &["township/classifier/v1/classifier.proto", "township/registry/v1/registry.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let file_descriptors = protox::compile(PROTOS, [&root])?;
    let descriptor_path = PathBuf::from(env::var("OUT_DIR")?).join("township_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&file_descriptors))?;
    tonic_prost_build::configure().compile_fds(file_descriptors)?;
    Ok(())
}
