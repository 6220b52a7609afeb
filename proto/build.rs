//! Generates the Rust code of the gRPC contracts with protox, so that building needs no system `protoc`.
//!
//! Two passes, because tonic uses one codec path for clients and servers alike: the messages and the servers
//! with `crate::codec::RequestCodec` (undecodable requests are INVALID_ARGUMENT), then the clients alone with
//! tonic's default `ProstCodec` (undecodable responses stay INTERNAL), referring to the first pass's messages.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &["township/classifier/v1/classifier.proto", "township/registry/v1/registry.proto"];
/// Protobuf package → module of `src/lib.rs` holding its messages.
const PACKAGES: &[(&str, &str)] =
    &[(".township.classifier.v1", "crate::classifier::v1"), (".township.registry.v1", "crate::registry::v1")];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let file_descriptors = protox::compile(PROTOS, [&root])?;
    let descriptor_path = out_dir.join("township_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&file_descriptors))?;

    // `prost::Name` lets the codec name the message a request failed to decode as.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(false)
        .codec_path("crate::codec::RequestCodec")
        .compile_fds_with_config(file_descriptors.clone(), config)?;

    let client_dir = out_dir.join("client");
    std::fs::create_dir_all(&client_dir)?;
    let mut services_only = file_descriptors;
    services_only.file.retain(|file| PACKAGES.iter().any(|(package, _)| file.package() == &package[1..]));
    for file in &mut services_only.file {
        file.message_type.clear();
        file.enum_type.clear();
    }
    let mut clients = tonic_prost_build::configure().build_server(false).out_dir(&client_dir);
    for (package, module) in PACKAGES {
        clients = clients.extern_path(*package, *module);
    }
    clients.compile_fds(services_only)?;
    Ok(())
}
