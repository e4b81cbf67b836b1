//! Request decoding for every service this server offers: a request's bytes
//! are checked and decoded by the server, not inside grpcio, so a request
//! over [`MAX_REQUEST_BYTES`] is refused with RESOURCE_EXHAUSTED and a
//! malformed one with INVALID_ARGUMENT, each with a log line, instead of
//! grpcio's generic INTERNAL. This is the server's only request-size limit:
//! C-core's message-size filter is not in its (minimal) channel stack.

use std::fmt;

use grpcio::{Marshaller, MessageReader, Method, MethodType, RpcStatus, RpcStatusCode};
use slog::{info, Logger};

use crate::config::MAX_REQUEST_BYTES;

/// Why a request's bytes were refused before its handler saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// More than [`MAX_REQUEST_BYTES`] bytes.
    TooLarge {
        /// The request's size.
        bytes: usize,
    },
    /// Not a valid message of the method's request type.
    Malformed(String),
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequest::TooLarge { bytes } => write!(
                f,
                "the request is {bytes} bytes, over the limit of {MAX_REQUEST_BYTES}"
            ),
            BadRequest::Malformed(error) => f.write_str(error),
        }
    }
}

/// A request as received: decoded, or why it was refused. Decoding never
/// fails the call inside grpcio (which would answer INTERNAL); the handler
/// answers a bad request with [`bad_request`]'s status instead.
pub type Received<T> = Result<T, BadRequest>;

fn decode<T: protobuf::Message>(mut reader: MessageReader) -> grpcio::Result<Received<T>> {
    let bytes = reader.len();
    if bytes > MAX_REQUEST_BYTES {
        return Ok(Err(BadRequest::TooLarge { bytes }));
    }
    let mut input = protobuf::CodedInputStream::from_buf_read(&mut reader);
    let mut message = T::new();
    Ok(match message.merge_from(&mut input) {
        Ok(()) => Ok(message),
        Err(error) => Err(BadRequest::Malformed(error.to_string())),
    })
}

/// The marshaller for a request type of ours.
pub fn request_marshaller<T: protobuf::Message>() -> Marshaller<Received<T>> {
    fn unused<T>(_: &Received<T>, _: &mut grpcio::GrpcSlice) -> grpcio::Result<()> {
        Err(grpcio::Error::Codec(
            "requests are only decoded here".into(),
        ))
    }
    Marshaller {
        ser: unused::<T>,
        de: decode::<T>,
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
pub fn method<Req, Resp>(ty: MethodType, path: &'static str) -> Method<Received<Req>, Resp>
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
