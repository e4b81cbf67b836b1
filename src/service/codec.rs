//! Request decoding for the services this server assembles by hand: a
//! request's bytes are decoded by the server, not inside grpcio, so a
//! malformed request is refused with INVALID_ARGUMENT and a log line instead
//! of grpcio's generic INTERNAL.

use grpcio::{Marshaller, MessageReader, Method, MethodType, RpcStatus, RpcStatusCode};
use slog::{info, Logger};

/// A request as received: decoded, or why its bytes are not a valid
/// message. Decoding never fails the call inside grpcio (which would answer
/// INTERNAL); a bad request is refused with INVALID_ARGUMENT instead.
pub type Received<T> = Result<T, String>;

fn decode<T: protobuf::Message>(mut reader: MessageReader) -> grpcio::Result<Received<T>> {
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

/// grpcio's protobuf marshaller, for responses (and requests this server
/// only sends or lets grpcio decode).
pub fn protobuf_marshaller<T: protobuf::MessageFull>() -> Marshaller<T> {
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
