//! Request decoding for every service this server offers: a request's bytes
//! are checked and decoded by the server, not inside grpcio, so a request
//! over the [`RequestCodec`]'s limit is refused with RESOURCE_EXHAUSTED and
//! a malformed one with INVALID_ARGUMENT, each with a log line, instead of
//! grpcio's generic INTERNAL. This is the server's only request-size limit:
//! C-core's message-size filter is not in its (minimal) channel stack.
//!
//! grpcio's marshallers are plain function pointers, which cannot hold a
//! configured limit: the marshaller hands over the received bytes as they
//! are ([`Raw`], no copy), and the registration wrapper of each method
//! decodes them with the [`RequestCodec`] the bootstrap configured.

use std::fmt;
use std::marker::PhantomData;

use grpcio::{Marshaller, MessageReader, Method, MethodType, RpcStatus, RpcStatusCode};
use slog::{info, Logger};

/// The request-size limit the server runs with unless configured otherwise:
/// 64 KiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Why a request's bytes were refused before its handler saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// Over the codec's limit.
    TooLarge {
        /// The request's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a valid message of the method's request type.
    Malformed(String),
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequest::TooLarge { bytes, limit } => {
                write!(f, "the request is {bytes} bytes, over the limit of {limit}")
            }
            BadRequest::Malformed(error) => f.write_str(error),
        }
    }
}

/// A request as decoded: the message, or why it was refused. Decoding never
/// fails the call inside grpcio (which would answer INTERNAL); the handler
/// answers a bad request with [`bad_request`]'s status instead.
pub type Received<T> = Result<T, BadRequest>;

/// A request of type `T` as received: its bytes, not yet decoded.
pub struct Raw<T> {
    reader: MessageReader,
    message: PhantomData<fn() -> T>,
}

/// Checks and decodes requests, refusing those over its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCodec {
    max_request_bytes: usize,
}

impl RequestCodec {
    /// A codec refusing requests of more than `max_request_bytes`.
    pub const fn new(max_request_bytes: usize) -> RequestCodec {
        RequestCodec { max_request_bytes }
    }

    /// The size limit, in bytes.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// Decodes `raw`, or says why it is refused.
    pub fn decode<T: protobuf::Message>(&self, raw: Raw<T>) -> Received<T> {
        let mut reader = raw.reader;
        let bytes = reader.len();
        if bytes > self.max_request_bytes {
            return Err(BadRequest::TooLarge {
                bytes,
                limit: self.max_request_bytes,
            });
        }
        let mut input = protobuf::CodedInputStream::from_buf_read(&mut reader);
        let mut message = T::new();
        match message.merge_from(&mut input) {
            Ok(()) => Ok(message),
            Err(error) => Err(BadRequest::Malformed(error.to_string())),
        }
    }
}

fn receive<T>(reader: MessageReader) -> grpcio::Result<Raw<T>> {
    Ok(Raw {
        reader,
        message: PhantomData,
    })
}

/// The marshaller for a request type of ours: it only hands the bytes on.
pub fn request_marshaller<T: protobuf::Message>() -> Marshaller<Raw<T>> {
    fn unused<T>(_: &Raw<T>, _: &mut grpcio::GrpcSlice) -> grpcio::Result<()> {
        Err(grpcio::Error::Codec(
            "requests are only decoded here".into(),
        ))
    }
    Marshaller {
        ser: unused::<T>,
        de: receive::<T>,
    }
}

/// The status for a request refused by the decoder, logged.
pub fn bad_request(rpc: &'static str, log: &Logger, error: &BadRequest) -> RpcStatus {
    let (code, code_name, reason, message) = match error {
        BadRequest::TooLarge { .. } => (
            RpcStatusCode::RESOURCE_EXHAUSTED,
            "RESOURCE_EXHAUSTED",
            "request too large",
            format!("{error}"),
        ),
        BadRequest::Malformed(_) => (
            RpcStatusCode::INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
            "malformed request",
            format!("the request is not a valid {rpc} request: {error}"),
        ),
    };
    info!(log, "call refused";
        "rpc" => rpc, "code" => code_name, "error" => %error, "reason" => reason);
    RpcStatus::with_message(code, message)
}

/// grpcio's protobuf marshaller, for responses.
fn protobuf_marshaller<T: protobuf::MessageFull>() -> Marshaller<T> {
    Marshaller {
        ser: grpcio::pb_ser,
        de: grpcio::pb_de,
    }
}

/// A method at `path` whose requests are decoded here and whose responses
/// are protobuf messages.
pub fn method<Req, Resp>(ty: MethodType, path: &'static str) -> Method<Raw<Req>, Resp>
where
    Req: protobuf::Message,
    Resp: protobuf::MessageFull,
{
    Method {
        ty,
        name: path,
        req_mar: request_marshaller::<Req>(),
        resp_mar: protobuf_marshaller::<Resp>(),
    }
}
