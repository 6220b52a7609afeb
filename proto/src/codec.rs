//! The codec of the generated *servers*: `tonic_prost::ProstCodec`, except that a request body that is not a
//! valid protobuf of the method's message is INVALID_ARGUMENT (the caller sent bad bytes; retrying them cannot
//! help) instead of tonic's INTERNAL. Clients keep `ProstCodec`: an undecodable *response* is the server's fault
//! and stays INTERNAL (the registry retries INTERNAL from the classifier but gives up on INVALID_ARGUMENT).

use std::marker::PhantomData;

use prost::{Message, Name};
use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstEncoder};
use tonic_types::{ErrorDetails, StatusExt as _};

/// `ProstCodec` with request decode failures answered INVALID_ARGUMENT, naming the message type.
#[derive(Debug, Clone)]
pub struct RequestCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for RequestCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for RequestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder { _pd: PhantomData, buffer_settings: BufferSettings::default() }
    }
}

/// Decodes `U`; a failure is INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct RequestDecoder<U> {
    _pd: PhantomData<U>,
    buffer_settings: BufferSettings,
}

impl<U: Message + Name + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|error| undecodable::<U>(&error))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.buffer_settings
    }
}

/// The refusal of bytes that are not a `U`, with the `ErrorInfo` every township refusal carries.
fn undecodable<U: Name>(error: &prost::DecodeError) -> Status {
    let message_type = U::full_name();
    let mut details = ErrorDetails::new();
    details.set_error_info(
        "INVALID_ARGUMENT",
        crate::ERROR_DOMAIN,
        std::collections::HashMap::from([("message_type".to_owned(), message_type.clone())]),
    );
    Status::with_error_details(
        Code::InvalidArgument,
        format!("the request body is not a valid {message_type} ({error})"),
        details,
    )
}
