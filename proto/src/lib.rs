//! The gRPC contracts of the township services: generated messages, clients and servers, and the encoded
//! file descriptor set that server reflection publishes.

pub mod codec;

/// Encoded `FileDescriptorSet` of every township proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/township_descriptor.bin"));

/// The `google.rpc.ErrorInfo.domain` of every township service's refusals: their reasons are unique within it.
pub const ERROR_DOMAIN: &str = "township.registry.gov";

// Generated code answers to prost and tonic, not to the workspace's lints: exempt here, the one place.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, unreachable_pub, missing_docs)]
pub mod classifier {
    pub mod v1 {
        tonic::include_proto!("township.classifier.v1");
        include!(concat!(env!("OUT_DIR"), "/client/township.classifier.v1.rs"));
    }
}

#[allow(clippy::all, clippy::pedantic, clippy::nursery, unreachable_pub, missing_docs)]
pub mod registry {
    pub mod v1 {
        tonic::include_proto!("township.registry.v1");
        include!(concat!(env!("OUT_DIR"), "/client/township.registry.v1.rs"));
    }
}
