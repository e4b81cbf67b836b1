"""Server reflection (grpc.reflection.v1alpha and v1): a client that knows
nothing of chat.proto discovers the service and calls it."""

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from harness import WAIT
from chat.v1 import chat_pb2

CHAT_SERVICE = "chat.v1.ChatService"
HEALTH_SERVICE = "grpc.health.v1.Health"
CHAT_METHODS = {
    "Connect",
    "CreateGroupChat",
    "JoinGroupChat",
    "LeaveGroupChat",
    "SendMessage",
    "ListChannels",
    "GetHistory",
    "ListGroupMembers",
    "SendTyping",
}


def test_v1alpha_lists_the_chat_and_health_services(chat):
    services = ProtoReflectionDescriptorDatabase(chat.channel).get_services()
    assert CHAT_SERVICE in services
    assert HEALTH_SERVICE in services


def test_v1alpha_finds_the_file_of_the_chat_service(chat):
    database = ProtoReflectionDescriptorDatabase(chat.channel)
    file = database.FindFileContainingSymbol(CHAT_SERVICE)
    assert file.package == "chat.v1"
    assert [service.name for service in file.service] == ["ChatService"]
    assert "google/protobuf/timestamp.proto" in file.dependency


def test_a_client_built_from_reflection_calls_list_channels(chat):
    chat.connect("alice")  # with the generated stubs
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(chat.channel))

    service = pool.FindServiceByName(CHAT_SERVICE)
    assert {method.name for method in service.methods} == CHAT_METHODS
    list_channels = service.methods_by_name["ListChannels"]
    assert list_channels.input_type.full_name == "chat.v1.ListChannelsRequest"
    assert list_channels.output_type.full_name == "chat.v1.ListChannelsResponse"

    connect_request = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("chat.v1.ConnectRequest")
    )
    # The reflected type encodes exactly as the generated one.
    assert (
        connect_request(username="bob").SerializeToString()
        == chat_pb2.ConnectRequest(username="bob").SerializeToString()
    )

    request_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("chat.v1.ListChannelsRequest")
    )
    response_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("chat.v1.ListChannelsResponse")
    )
    call = chat.channel.unary_unary(
        "/chat.v1.ChatService/ListChannels",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    response = call(request_class(), metadata=(("authorization", "alice"),), timeout=WAIT)
    user = pool.FindEnumTypeByName("chat.v1.ChannelType").values_by_name["CHANNEL_TYPE_USER"]
    assert [(c.name, c.type, c.member_count, c.joined) for c in response.channels] == [
        ("alice", user.number, 0, False)
    ]


def reflect_v1(channel: grpc.Channel, **request) -> reflection_pb2.ServerReflectionResponse:
    """One request to grpc.reflection.v1 (its messages are v1alpha's, field
    for field, so the v1alpha classes encode them)."""
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = list(call(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=WAIT))
    assert len(responses) == 1, responses
    [response] = responses
    assert not response.HasField("error_response"), response.error_response
    return response


def test_v1_lists_the_chat_and_health_services(chat):
    response = reflect_v1(chat.channel, list_services="")
    services = [service.name for service in response.list_services_response.service]
    assert CHAT_SERVICE in services
    assert HEALTH_SERVICE in services


def test_v1_finds_the_file_of_the_chat_service(chat):
    response = reflect_v1(chat.channel, file_containing_symbol=CHAT_SERVICE)
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    chat_files = [f for f in files if f.package == "chat.v1"]
    assert len(chat_files) == 1, [f.name for f in files]
    assert [service.name for service in chat_files[0].service] == ["ChatService"]
