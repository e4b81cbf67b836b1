//! Request decoding for the services this server assembles by hand: a
//! request's bytes are decoded by the server, not inside grpcio, so a
//! malformed request is refused with INVALID_ARGUMENT and a log line instead
//! of grpcio's generic INTERNAL.

use grpcio::{Marshaller, MessageReader, RpcStatus, RpcStatusCode};
use slog::{info, Logger};

/// A request as received: decoded, or why its bytes are not a valid
/// message. Decoding never fails the call inside grpcio (which would answer
/// INTERNAL); a bad request is refused with INVALID_ARGUMENT instead.
pub type Received<T> = Result<T, String>;

pub fn decode<T: protobuf::Message>(mut reader: MessageReader) -> grpcio::Result<Received<T>> {
    let mut input = protobuf::CodedInputStream::from_buf_read(&mut reader);
    let mut message = T::new();
    Ok(match message.merge_from(&mut input) {
        Ok(()) => Ok(message),
        Err(error) => Err(error.to_string()),
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

/// The status for a request whose bytes do not decode.
pub fn malformed(rpc: &'static str, log: &Logger, error: &str) -> RpcStatus {
    info!(log, "call refused";
        "rpc" => rpc, "code" => "INVALID_ARGUMENT", "error" => %error, "reason" => "malformed request");
    RpcStatus::with_message(
        RpcStatusCode::INVALID_ARGUMENT,
        format!("the request is not a valid {rpc} request: {error}"),
    )
}
