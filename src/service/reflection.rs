//! gRPC server reflection (`grpc.reflection.v1` and `v1alpha`), so grpcurl,
//! evans, Postman and buf curl can list and call the API without the .proto
//! files. It serves the file descriptors the generated code already embeds
//! (chat.proto, health and reflection, and what they import), indexed by
//! file name and by the symbols they define. Both protocol versions have the
//! same messages on the wire, so one handler over the v1 types serves both.
//! Requests are decoded by [`super::codec`]: a malformed or oversize one
//! ends the stream with INVALID_ARGUMENT or RESOURCE_EXHAUSTED.

use std::collections::HashMap;
use std::sync::Arc;

use chat_proto::reflection_v1::reflection::{
    server_reflection_request::Message_request as Request,
    server_reflection_response::Message_response as Response, ErrorResponse,
    ExtensionNumberResponse, FileDescriptorResponse, ListServiceResponse, ServerReflectionRequest,
    ServerReflectionResponse, ServiceResponse,
};
use futures::{FutureExt, SinkExt, StreamExt};
use grpcio::{
    DuplexSink, MethodType, RequestStream, RpcContext, RpcStatusCode, ServiceBuilder, WriteFlags,
};
use protobuf::descriptor::{DescriptorProto, EnumDescriptorProto};
use protobuf::reflect::FileDescriptor;
use protobuf::Message as _;
use slog::{debug, Logger};

use super::codec::{self, bad_request, Raw, RequestCodec};

/// The method's name in log lines.
const RPC: &str = "ServerReflectionInfo";

/// The services this server offers, as reflection lists them.
pub const SERVICES: [&str; 4] = [
    "chat.v1.ChatService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The services the admin listener offers, as reflection lists them.
pub const ADMIN_SERVICES: [&str; 4] = [
    "chat.admin.v1.AdminService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The file descriptors a listener describes, and where each symbol lives.
#[derive(Debug, Default)]
pub struct DescriptorIndex {
    /// The services the listener offers.
    services: &'static [&'static str],
    /// Serialized `FileDescriptorProto` by file name.
    files: HashMap<String, Vec<u8>>,
    /// Each file's direct imports.
    imports: HashMap<String, Vec<String>>,
    /// Fully qualified symbol (service, method, message, enum, field, enum
    /// value) to the file defining it.
    symbols: HashMap<String, String>,
}

impl DescriptorIndex {
    /// Indexes the chat listener's own files and everything they import.
    pub fn for_this_server() -> DescriptorIndex {
        DescriptorIndex::new(
            &SERVICES,
            &[
                chat_proto::chat::file_descriptor(),
                chat_proto::health::file_descriptor(),
                chat_proto::reflection_v1::reflection::file_descriptor(),
                chat_proto::reflection_v1alpha::reflection::file_descriptor(),
            ],
        )
    }

    /// Indexes the admin listener's own files and everything they import.
    pub fn for_admin() -> DescriptorIndex {
        DescriptorIndex::new(
            &ADMIN_SERVICES,
            &[
                chat_proto::admin::file_descriptor(),
                chat_proto::health::file_descriptor(),
                chat_proto::reflection_v1::reflection::file_descriptor(),
                chat_proto::reflection_v1alpha::reflection::file_descriptor(),
            ],
        )
    }

    /// Indexes `roots` and, transitively, their imports, for a listener
    /// offering `services`.
    pub fn new(services: &'static [&'static str], roots: &[&FileDescriptor]) -> DescriptorIndex {
        let mut index = DescriptorIndex {
            services,
            ..DescriptorIndex::default()
        };
        let mut pending: Vec<FileDescriptor> = roots.iter().map(|&file| file.clone()).collect();
        while let Some(file) = pending.pop() {
            if index.files.contains_key(file.name()) {
                continue;
            }
            index.add(&file);
            pending.extend(file.deps().iter().cloned());
        }
        index
    }

    fn add(&mut self, file: &FileDescriptor) {
        let proto = file.proto();
        let name = file.name().to_owned();
        let package = proto.package();
        let prefix = if package.is_empty() {
            String::new()
        } else {
            format!("{package}.")
        };
        let mut symbols = Vec::new();
        for service in &proto.service {
            let service_name = format!("{prefix}{}", service.name());
            for method in &service.method {
                symbols.push(format!("{service_name}.{}", method.name()));
            }
            symbols.push(service_name);
        }
        for message in &proto.message_type {
            message_symbols(&prefix, message, &mut symbols);
        }
        for enumeration in &proto.enum_type {
            enum_symbols(&prefix, enumeration, &mut symbols);
        }
        for symbol in symbols {
            self.symbols.insert(symbol, name.clone());
        }
        // Serializing a descriptor built by protoc cannot fail; an empty
        // entry would only make reflection clients report a bad file.
        let bytes = proto.write_to_bytes().unwrap_or_default();
        self.imports.insert(name.clone(), proto.dependency.clone());
        self.files.insert(name, bytes);
    }

    /// The file named `name` followed by its transitive imports, each once.
    fn file_with_imports(&self, name: &str) -> Option<Vec<Vec<u8>>> {
        self.files.get(name)?;
        let mut order = Vec::new();
        let mut pending = vec![name.to_owned()];
        while let Some(file) = pending.pop() {
            if order.contains(&file) {
                continue;
            }
            if let Some(imports) = self.imports.get(&file) {
                pending.extend(imports.iter().rev().cloned());
            }
            order.push(file);
        }
        Some(
            order
                .iter()
                .filter_map(|file| self.files.get(file).cloned())
                .collect(),
        )
    }

    /// Answers one reflection request.
    pub fn answer(&self, request: Option<&Request>) -> Response {
        match request {
            Some(Request::FileByFilename(name)) => self
                .file_with_imports(name)
                .map(files)
                .unwrap_or_else(|| not_found(format!("no file named {name:?}"))),
            Some(Request::FileContainingSymbol(symbol)) => {
                let symbol = symbol.trim_start_matches('.');
                self.symbols
                    .get(symbol)
                    .and_then(|file| self.file_with_imports(file))
                    .map(files)
                    .unwrap_or_else(|| not_found(format!("no symbol named {symbol:?}")))
            }
            Some(Request::FileContainingExtension(extension)) => not_found(format!(
                "no extension {} of {:?}: this API defines no extensions",
                extension.extension_number, extension.containing_type
            )),
            Some(Request::AllExtensionNumbersOfType(type_name)) => {
                if self.symbols.contains_key(type_name.trim_start_matches('.')) {
                    let mut numbers = ExtensionNumberResponse::new();
                    numbers.base_type_name = type_name.clone();
                    Response::AllExtensionNumbersResponse(numbers)
                } else {
                    not_found(format!("no type named {type_name:?}"))
                }
            }
            Some(Request::ListServices(_)) => {
                let mut list = ListServiceResponse::new();
                list.service = self
                    .services
                    .iter()
                    .map(|&name| {
                        let mut service = ServiceResponse::new();
                        service.name = name.to_owned();
                        service
                    })
                    .collect();
                Response::ListServicesResponse(list)
            }
            Some(_) | None => error(
                RpcStatusCode::INVALID_ARGUMENT,
                "the request names no question this server knows".to_owned(),
            ),
        }
    }
}

fn message_symbols(prefix: &str, message: &DescriptorProto, out: &mut Vec<String>) {
    let name = format!("{prefix}{}", message.name());
    for field in &message.field {
        out.push(format!("{name}.{}", field.name()));
    }
    let nested_prefix = format!("{name}.");
    for nested in &message.nested_type {
        message_symbols(&nested_prefix, nested, out);
    }
    for enumeration in &message.enum_type {
        enum_symbols(&nested_prefix, enumeration, out);
    }
    out.push(name);
}

fn enum_symbols(prefix: &str, enumeration: &EnumDescriptorProto, out: &mut Vec<String>) {
    let name = format!("{prefix}{}", enumeration.name());
    // Enum values are scoped like their enum's siblings, as in protobuf.
    for value in &enumeration.value {
        out.push(format!("{prefix}{}", value.name()));
    }
    out.push(name);
}

fn files(file_descriptor_proto: Vec<Vec<u8>>) -> Response {
    let mut response = FileDescriptorResponse::new();
    response.file_descriptor_proto = file_descriptor_proto;
    Response::FileDescriptorResponse(response)
}

fn not_found(message: String) -> Response {
    error(RpcStatusCode::NOT_FOUND, message)
}

fn error(code: RpcStatusCode, message: String) -> Response {
    let mut error = ErrorResponse::new();
    error.error_code = code.into();
    error.error_message = message;
    Response::ErrorResponse(error)
}

/// The reflection service: a cheap `Clone` handle around the index.
#[derive(Clone)]
pub struct ReflectionService {
    index: Arc<DescriptorIndex>,
    log: Logger,
}

impl ReflectionService {
    /// A reflection service describing the chat listener.
    pub fn new(log: Logger) -> ReflectionService {
        ReflectionService {
            index: Arc::new(DescriptorIndex::for_this_server()),
            log,
        }
    }

    /// A reflection service describing the admin listener.
    pub fn for_admin(log: Logger) -> ReflectionService {
        ReflectionService {
            index: Arc::new(DescriptorIndex::for_admin()),
            log,
        }
    }

    /// The `grpc.reflection.v1` service, decoding requests with `codec`.
    pub fn v1(&self, codec: RequestCodec) -> grpcio::Service {
        self.service(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            codec,
        )
    }

    /// The `grpc.reflection.v1alpha` service, answered by the same handler:
    /// its messages are the v1 messages under another package name, so the
    /// method is registered with the v1 types under the v1alpha path.
    pub fn v1alpha(&self, codec: RequestCodec) -> grpcio::Service {
        self.service(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            codec,
        )
    }

    /// The service whose one method is `path`, with requests decoded by
    /// `codec` ([`super::codec`]): a bad request ends the stream with its
    /// status.
    fn service(&self, path: &'static str, codec: RequestCodec) -> grpcio::Service {
        let method = codec::method::<ServerReflectionRequest, ServerReflectionResponse>(
            MethodType::Duplex,
            path,
        );
        let handler = self.clone();
        ServiceBuilder::new()
            .add_duplex_streaming_handler(&method, move |ctx, requests, sink| {
                handler.server_reflection_info(&ctx, codec, requests, sink)
            })
            .build()
    }

    /// Answers each request on the stream in turn.
    fn server_reflection_info(
        &self,
        ctx: &RpcContext<'_>,
        codec: RequestCodec,
        mut requests: RequestStream<Raw<ServerReflectionRequest>>,
        mut sink: DuplexSink<ServerReflectionResponse>,
    ) {
        let index = Arc::clone(&self.index);
        let log = self.log.clone();
        let task = async move {
            while let Some(request) = requests.next().await {
                let request = match codec.decode(request?) {
                    Ok(request) => request,
                    Err(error) => {
                        let status = bad_request(RPC, &log, &error);
                        return sink.fail(status).await;
                    }
                };
                let mut response = ServerReflectionResponse::new();
                response.valid_host = request.host.clone();
                response.message_response = Some(index.answer(request.message_request.as_ref()));
                response.original_request = protobuf::MessageField::some(request);
                sink.send((response, WriteFlags::default())).await?;
            }
            sink.close().await
        };
        let log = self.log.clone();
        ctx.spawn(task.map(move |outcome: grpcio::Result<()>| {
            if let Err(error) = outcome {
                debug!(log, "reflection stream ended"; "error" => %error);
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(request: Request) -> Response {
        DescriptorIndex::for_this_server().answer(Some(&request))
    }

    fn file_names(response: Response) -> Vec<String> {
        match response {
            Response::FileDescriptorResponse(files) => files
                .file_descriptor_proto
                .iter()
                .map(|bytes| {
                    protobuf::descriptor::FileDescriptorProto::parse_from_bytes(bytes)
                        .unwrap()
                        .name()
                        .to_owned()
                })
                .collect(),
            other => panic!("expected files, got {other:?}"),
        }
    }

    #[test]
    fn a_symbol_resolves_to_its_file_with_imports() {
        for symbol in [
            "chat.v1.ChatService",
            "chat.v1.ChatService.SendMessage",
            ".chat.v1.Message",
            "chat.v1.ConnectResponse",
            "chat.v1.ChannelType",
            "chat.v1.CHANNEL_TYPE_GROUP",
            "chat.v1.Message.sent_at",
        ] {
            assert_eq!(
                file_names(answer(Request::FileContainingSymbol(symbol.into()))),
                ["chat/v1/chat.proto", "google/protobuf/timestamp.proto"],
                "{symbol}"
            );
        }
        assert_eq!(
            file_names(answer(Request::FileContainingSymbol(
                "grpc.health.v1.HealthCheckResponse.ServingStatus".into()
            ))),
            ["grpc/health/v1/health.proto"]
        );
    }

    #[test]
    fn files_are_found_by_name_and_unknown_things_are_not_found() {
        assert_eq!(
            file_names(answer(Request::FileByFilename(
                "google/protobuf/timestamp.proto".into()
            ))),
            ["google/protobuf/timestamp.proto"]
        );
        for request in [
            Request::FileByFilename("nope.proto".into()),
            Request::FileContainingSymbol("chat.v1.Nope".into()),
            Request::AllExtensionNumbersOfType("chat.v1.Nope".into()),
        ] {
            match answer(request) {
                Response::ErrorResponse(error) => assert_eq!(error.error_code, 5),
                other => panic!("expected NOT_FOUND, got {other:?}"),
            }
        }
    }

    #[test]
    fn every_service_is_listed_and_resolvable() {
        let Response::ListServicesResponse(list) = answer(Request::ListServices(String::new()))
        else {
            panic!("expected a service list");
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, SERVICES);
        let index = DescriptorIndex::for_this_server();
        for service in SERVICES {
            assert!(index.symbols.contains_key(service), "{service}");
        }
    }
}
