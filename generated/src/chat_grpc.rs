// This file is generated. Do not edit
// @generated

// https://github.com/Manishearth/rust-clippy/issues/702
#![allow(unknown_lints)]
#![allow(clippy::all)]

#![allow(box_pointers)]
#![allow(dead_code)]
#![allow(missing_docs)]
#![allow(non_camel_case_types)]
#![allow(non_snake_case)]
#![allow(non_upper_case_globals)]
#![allow(trivial_casts)]
#![allow(unsafe_code)]
#![allow(unused_imports)]
#![allow(unused_results)]

const METHOD_CHAT_SERVICE_CONNECT: ::grpcio::Method<super::chat::ConnectRequest, super::chat::ConnectResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::ServerStreaming,
    name: "/chat.v1.ChatService/Connect",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_CHAT_SERVICE_CREATE_GROUP_CHAT: ::grpcio::Method<super::chat::CreateGroupChatRequest, super::chat::CreateGroupChatResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.v1.ChatService/CreateGroupChat",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_CHAT_SERVICE_JOIN_GROUP_CHAT: ::grpcio::Method<super::chat::JoinGroupChatRequest, super::chat::JoinGroupChatResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.v1.ChatService/JoinGroupChat",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_CHAT_SERVICE_LEAVE_GROUP_CHAT: ::grpcio::Method<super::chat::LeaveGroupChatRequest, super::chat::LeaveGroupChatResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.v1.ChatService/LeaveGroupChat",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_CHAT_SERVICE_SEND_MESSAGE: ::grpcio::Method<super::chat::SendMessageRequest, super::chat::SendMessageResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.v1.ChatService/SendMessage",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_CHAT_SERVICE_LIST_CHANNELS: ::grpcio::Method<super::chat::ListChannelsRequest, super::chat::ListChannelsResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.v1.ChatService/ListChannels",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_CHAT_SERVICE_GET_HISTORY: ::grpcio::Method<super::chat::GetHistoryRequest, super::chat::GetHistoryResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.v1.ChatService/GetHistory",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_CHAT_SERVICE_LIST_GROUP_MEMBERS: ::grpcio::Method<super::chat::ListGroupMembersRequest, super::chat::ListGroupMembersResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.v1.ChatService/ListGroupMembers",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_CHAT_SERVICE_SEND_TYPING: ::grpcio::Method<super::chat::SendTypingRequest, super::chat::SendTypingResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.v1.ChatService/SendTyping",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

#[derive(Clone)]
pub struct ChatServiceClient {
    pub client: ::grpcio::Client,
}

impl ChatServiceClient {
    pub fn new(channel: ::grpcio::Channel) -> Self {
        ChatServiceClient {
            client: ::grpcio::Client::new(channel),
        }
    }

    pub fn connect_opt(&self, req: &super::chat::ConnectRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientSStreamReceiver<super::chat::ConnectResponse>> {
        self.client.server_streaming(&METHOD_CHAT_SERVICE_CONNECT, req, opt)
    }

    pub fn connect(&self, req: &super::chat::ConnectRequest) -> ::grpcio::Result<::grpcio::ClientSStreamReceiver<super::chat::ConnectResponse>> {
        self.connect_opt(req, ::grpcio::CallOption::default())
    }

    pub fn create_group_chat_opt(&self, req: &super::chat::CreateGroupChatRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::chat::CreateGroupChatResponse> {
        self.client.unary_call(&METHOD_CHAT_SERVICE_CREATE_GROUP_CHAT, req, opt)
    }

    pub fn create_group_chat(&self, req: &super::chat::CreateGroupChatRequest) -> ::grpcio::Result<super::chat::CreateGroupChatResponse> {
        self.create_group_chat_opt(req, ::grpcio::CallOption::default())
    }

    pub fn create_group_chat_async_opt(&self, req: &super::chat::CreateGroupChatRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::CreateGroupChatResponse>> {
        self.client.unary_call_async(&METHOD_CHAT_SERVICE_CREATE_GROUP_CHAT, req, opt)
    }

    pub fn create_group_chat_async(&self, req: &super::chat::CreateGroupChatRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::CreateGroupChatResponse>> {
        self.create_group_chat_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn join_group_chat_opt(&self, req: &super::chat::JoinGroupChatRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::chat::JoinGroupChatResponse> {
        self.client.unary_call(&METHOD_CHAT_SERVICE_JOIN_GROUP_CHAT, req, opt)
    }

    pub fn join_group_chat(&self, req: &super::chat::JoinGroupChatRequest) -> ::grpcio::Result<super::chat::JoinGroupChatResponse> {
        self.join_group_chat_opt(req, ::grpcio::CallOption::default())
    }

    pub fn join_group_chat_async_opt(&self, req: &super::chat::JoinGroupChatRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::JoinGroupChatResponse>> {
        self.client.unary_call_async(&METHOD_CHAT_SERVICE_JOIN_GROUP_CHAT, req, opt)
    }

    pub fn join_group_chat_async(&self, req: &super::chat::JoinGroupChatRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::JoinGroupChatResponse>> {
        self.join_group_chat_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn leave_group_chat_opt(&self, req: &super::chat::LeaveGroupChatRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::chat::LeaveGroupChatResponse> {
        self.client.unary_call(&METHOD_CHAT_SERVICE_LEAVE_GROUP_CHAT, req, opt)
    }

    pub fn leave_group_chat(&self, req: &super::chat::LeaveGroupChatRequest) -> ::grpcio::Result<super::chat::LeaveGroupChatResponse> {
        self.leave_group_chat_opt(req, ::grpcio::CallOption::default())
    }

    pub fn leave_group_chat_async_opt(&self, req: &super::chat::LeaveGroupChatRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::LeaveGroupChatResponse>> {
        self.client.unary_call_async(&METHOD_CHAT_SERVICE_LEAVE_GROUP_CHAT, req, opt)
    }

    pub fn leave_group_chat_async(&self, req: &super::chat::LeaveGroupChatRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::LeaveGroupChatResponse>> {
        self.leave_group_chat_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn send_message_opt(&self, req: &super::chat::SendMessageRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::chat::SendMessageResponse> {
        self.client.unary_call(&METHOD_CHAT_SERVICE_SEND_MESSAGE, req, opt)
    }

    pub fn send_message(&self, req: &super::chat::SendMessageRequest) -> ::grpcio::Result<super::chat::SendMessageResponse> {
        self.send_message_opt(req, ::grpcio::CallOption::default())
    }

    pub fn send_message_async_opt(&self, req: &super::chat::SendMessageRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::SendMessageResponse>> {
        self.client.unary_call_async(&METHOD_CHAT_SERVICE_SEND_MESSAGE, req, opt)
    }

    pub fn send_message_async(&self, req: &super::chat::SendMessageRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::SendMessageResponse>> {
        self.send_message_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn list_channels_opt(&self, req: &super::chat::ListChannelsRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::chat::ListChannelsResponse> {
        self.client.unary_call(&METHOD_CHAT_SERVICE_LIST_CHANNELS, req, opt)
    }

    pub fn list_channels(&self, req: &super::chat::ListChannelsRequest) -> ::grpcio::Result<super::chat::ListChannelsResponse> {
        self.list_channels_opt(req, ::grpcio::CallOption::default())
    }

    pub fn list_channels_async_opt(&self, req: &super::chat::ListChannelsRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::ListChannelsResponse>> {
        self.client.unary_call_async(&METHOD_CHAT_SERVICE_LIST_CHANNELS, req, opt)
    }

    pub fn list_channels_async(&self, req: &super::chat::ListChannelsRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::ListChannelsResponse>> {
        self.list_channels_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn get_history_opt(&self, req: &super::chat::GetHistoryRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::chat::GetHistoryResponse> {
        self.client.unary_call(&METHOD_CHAT_SERVICE_GET_HISTORY, req, opt)
    }

    pub fn get_history(&self, req: &super::chat::GetHistoryRequest) -> ::grpcio::Result<super::chat::GetHistoryResponse> {
        self.get_history_opt(req, ::grpcio::CallOption::default())
    }

    pub fn get_history_async_opt(&self, req: &super::chat::GetHistoryRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::GetHistoryResponse>> {
        self.client.unary_call_async(&METHOD_CHAT_SERVICE_GET_HISTORY, req, opt)
    }

    pub fn get_history_async(&self, req: &super::chat::GetHistoryRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::GetHistoryResponse>> {
        self.get_history_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn list_group_members_opt(&self, req: &super::chat::ListGroupMembersRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::chat::ListGroupMembersResponse> {
        self.client.unary_call(&METHOD_CHAT_SERVICE_LIST_GROUP_MEMBERS, req, opt)
    }

    pub fn list_group_members(&self, req: &super::chat::ListGroupMembersRequest) -> ::grpcio::Result<super::chat::ListGroupMembersResponse> {
        self.list_group_members_opt(req, ::grpcio::CallOption::default())
    }

    pub fn list_group_members_async_opt(&self, req: &super::chat::ListGroupMembersRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::ListGroupMembersResponse>> {
        self.client.unary_call_async(&METHOD_CHAT_SERVICE_LIST_GROUP_MEMBERS, req, opt)
    }

    pub fn list_group_members_async(&self, req: &super::chat::ListGroupMembersRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::ListGroupMembersResponse>> {
        self.list_group_members_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn send_typing_opt(&self, req: &super::chat::SendTypingRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::chat::SendTypingResponse> {
        self.client.unary_call(&METHOD_CHAT_SERVICE_SEND_TYPING, req, opt)
    }

    pub fn send_typing(&self, req: &super::chat::SendTypingRequest) -> ::grpcio::Result<super::chat::SendTypingResponse> {
        self.send_typing_opt(req, ::grpcio::CallOption::default())
    }

    pub fn send_typing_async_opt(&self, req: &super::chat::SendTypingRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::SendTypingResponse>> {
        self.client.unary_call_async(&METHOD_CHAT_SERVICE_SEND_TYPING, req, opt)
    }

    pub fn send_typing_async(&self, req: &super::chat::SendTypingRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::chat::SendTypingResponse>> {
        self.send_typing_async_opt(req, ::grpcio::CallOption::default())
    }
    pub fn spawn<F>(&self, f: F) where F: ::std::future::Future<Output = ()> + Send + 'static {
        self.client.spawn(f)
    }
}

pub trait ChatService {
    fn connect(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::ConnectRequest, sink: ::grpcio::ServerStreamingSink<super::chat::ConnectResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn create_group_chat(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::CreateGroupChatRequest, sink: ::grpcio::UnarySink<super::chat::CreateGroupChatResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn join_group_chat(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::JoinGroupChatRequest, sink: ::grpcio::UnarySink<super::chat::JoinGroupChatResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn leave_group_chat(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::LeaveGroupChatRequest, sink: ::grpcio::UnarySink<super::chat::LeaveGroupChatResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn send_message(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::SendMessageRequest, sink: ::grpcio::UnarySink<super::chat::SendMessageResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn list_channels(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::ListChannelsRequest, sink: ::grpcio::UnarySink<super::chat::ListChannelsResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn get_history(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::GetHistoryRequest, sink: ::grpcio::UnarySink<super::chat::GetHistoryResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn list_group_members(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::ListGroupMembersRequest, sink: ::grpcio::UnarySink<super::chat::ListGroupMembersResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn send_typing(&mut self, ctx: ::grpcio::RpcContext, _req: super::chat::SendTypingRequest, sink: ::grpcio::UnarySink<super::chat::SendTypingResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
}

pub fn create_chat_service<S: ChatService + Send + Clone + 'static>(s: S) -> ::grpcio::Service {
    let mut builder = ::grpcio::ServiceBuilder::new();
    let mut instance = s.clone();
    builder = builder.add_server_streaming_handler(&METHOD_CHAT_SERVICE_CONNECT, move |ctx, req, resp| {
        instance.connect(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_CHAT_SERVICE_CREATE_GROUP_CHAT, move |ctx, req, resp| {
        instance.create_group_chat(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_CHAT_SERVICE_JOIN_GROUP_CHAT, move |ctx, req, resp| {
        instance.join_group_chat(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_CHAT_SERVICE_LEAVE_GROUP_CHAT, move |ctx, req, resp| {
        instance.leave_group_chat(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_CHAT_SERVICE_SEND_MESSAGE, move |ctx, req, resp| {
        instance.send_message(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_CHAT_SERVICE_LIST_CHANNELS, move |ctx, req, resp| {
        instance.list_channels(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_CHAT_SERVICE_GET_HISTORY, move |ctx, req, resp| {
        instance.get_history(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_CHAT_SERVICE_LIST_GROUP_MEMBERS, move |ctx, req, resp| {
        instance.list_group_members(ctx, req, resp)
    });
    let mut instance = s;
    builder = builder.add_unary_handler(&METHOD_CHAT_SERVICE_SEND_TYPING, move |ctx, req, resp| {
        instance.send_typing(ctx, req, resp)
    });
    builder.build()
}
