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

const METHOD_ADMIN_SERVICE_DISCONNECT_USER: ::grpcio::Method<super::admin::DisconnectUserRequest, super::admin::DisconnectUserResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.admin.v1.AdminService/DisconnectUser",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_ADMIN_SERVICE_REMOVE_GROUP_MEMBER: ::grpcio::Method<super::admin::RemoveGroupMemberRequest, super::admin::RemoveGroupMemberResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.admin.v1.AdminService/RemoveGroupMember",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_ADMIN_SERVICE_DELETE_GROUP: ::grpcio::Method<super::admin::DeleteGroupRequest, super::admin::DeleteGroupResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.admin.v1.AdminService/DeleteGroup",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_ADMIN_SERVICE_PUBLISH: ::grpcio::Method<super::admin::PublishRequest, super::admin::PublishResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.admin.v1.AdminService/Publish",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

const METHOD_ADMIN_SERVICE_LIST_USERS: ::grpcio::Method<super::admin::ListUsersRequest, super::admin::ListUsersResponse> = ::grpcio::Method {
    ty: ::grpcio::MethodType::Unary,
    name: "/chat.admin.v1.AdminService/ListUsers",
    req_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
    resp_mar: ::grpcio::Marshaller { ser: ::grpcio::pb_ser, de: ::grpcio::pb_de },
};

#[derive(Clone)]
pub struct AdminServiceClient {
    pub client: ::grpcio::Client,
}

impl AdminServiceClient {
    pub fn new(channel: ::grpcio::Channel) -> Self {
        AdminServiceClient {
            client: ::grpcio::Client::new(channel),
        }
    }

    pub fn disconnect_user_opt(&self, req: &super::admin::DisconnectUserRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::admin::DisconnectUserResponse> {
        self.client.unary_call(&METHOD_ADMIN_SERVICE_DISCONNECT_USER, req, opt)
    }

    pub fn disconnect_user(&self, req: &super::admin::DisconnectUserRequest) -> ::grpcio::Result<super::admin::DisconnectUserResponse> {
        self.disconnect_user_opt(req, ::grpcio::CallOption::default())
    }

    pub fn disconnect_user_async_opt(&self, req: &super::admin::DisconnectUserRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::DisconnectUserResponse>> {
        self.client.unary_call_async(&METHOD_ADMIN_SERVICE_DISCONNECT_USER, req, opt)
    }

    pub fn disconnect_user_async(&self, req: &super::admin::DisconnectUserRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::DisconnectUserResponse>> {
        self.disconnect_user_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn remove_group_member_opt(&self, req: &super::admin::RemoveGroupMemberRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::admin::RemoveGroupMemberResponse> {
        self.client.unary_call(&METHOD_ADMIN_SERVICE_REMOVE_GROUP_MEMBER, req, opt)
    }

    pub fn remove_group_member(&self, req: &super::admin::RemoveGroupMemberRequest) -> ::grpcio::Result<super::admin::RemoveGroupMemberResponse> {
        self.remove_group_member_opt(req, ::grpcio::CallOption::default())
    }

    pub fn remove_group_member_async_opt(&self, req: &super::admin::RemoveGroupMemberRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::RemoveGroupMemberResponse>> {
        self.client.unary_call_async(&METHOD_ADMIN_SERVICE_REMOVE_GROUP_MEMBER, req, opt)
    }

    pub fn remove_group_member_async(&self, req: &super::admin::RemoveGroupMemberRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::RemoveGroupMemberResponse>> {
        self.remove_group_member_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn delete_group_opt(&self, req: &super::admin::DeleteGroupRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::admin::DeleteGroupResponse> {
        self.client.unary_call(&METHOD_ADMIN_SERVICE_DELETE_GROUP, req, opt)
    }

    pub fn delete_group(&self, req: &super::admin::DeleteGroupRequest) -> ::grpcio::Result<super::admin::DeleteGroupResponse> {
        self.delete_group_opt(req, ::grpcio::CallOption::default())
    }

    pub fn delete_group_async_opt(&self, req: &super::admin::DeleteGroupRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::DeleteGroupResponse>> {
        self.client.unary_call_async(&METHOD_ADMIN_SERVICE_DELETE_GROUP, req, opt)
    }

    pub fn delete_group_async(&self, req: &super::admin::DeleteGroupRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::DeleteGroupResponse>> {
        self.delete_group_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn publish_opt(&self, req: &super::admin::PublishRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::admin::PublishResponse> {
        self.client.unary_call(&METHOD_ADMIN_SERVICE_PUBLISH, req, opt)
    }

    pub fn publish(&self, req: &super::admin::PublishRequest) -> ::grpcio::Result<super::admin::PublishResponse> {
        self.publish_opt(req, ::grpcio::CallOption::default())
    }

    pub fn publish_async_opt(&self, req: &super::admin::PublishRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::PublishResponse>> {
        self.client.unary_call_async(&METHOD_ADMIN_SERVICE_PUBLISH, req, opt)
    }

    pub fn publish_async(&self, req: &super::admin::PublishRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::PublishResponse>> {
        self.publish_async_opt(req, ::grpcio::CallOption::default())
    }

    pub fn list_users_opt(&self, req: &super::admin::ListUsersRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<super::admin::ListUsersResponse> {
        self.client.unary_call(&METHOD_ADMIN_SERVICE_LIST_USERS, req, opt)
    }

    pub fn list_users(&self, req: &super::admin::ListUsersRequest) -> ::grpcio::Result<super::admin::ListUsersResponse> {
        self.list_users_opt(req, ::grpcio::CallOption::default())
    }

    pub fn list_users_async_opt(&self, req: &super::admin::ListUsersRequest, opt: ::grpcio::CallOption) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::ListUsersResponse>> {
        self.client.unary_call_async(&METHOD_ADMIN_SERVICE_LIST_USERS, req, opt)
    }

    pub fn list_users_async(&self, req: &super::admin::ListUsersRequest) -> ::grpcio::Result<::grpcio::ClientUnaryReceiver<super::admin::ListUsersResponse>> {
        self.list_users_async_opt(req, ::grpcio::CallOption::default())
    }
    pub fn spawn<F>(&self, f: F) where F: ::std::future::Future<Output = ()> + Send + 'static {
        self.client.spawn(f)
    }
}

pub trait AdminService {
    fn disconnect_user(&mut self, ctx: ::grpcio::RpcContext, _req: super::admin::DisconnectUserRequest, sink: ::grpcio::UnarySink<super::admin::DisconnectUserResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn remove_group_member(&mut self, ctx: ::grpcio::RpcContext, _req: super::admin::RemoveGroupMemberRequest, sink: ::grpcio::UnarySink<super::admin::RemoveGroupMemberResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn delete_group(&mut self, ctx: ::grpcio::RpcContext, _req: super::admin::DeleteGroupRequest, sink: ::grpcio::UnarySink<super::admin::DeleteGroupResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn publish(&mut self, ctx: ::grpcio::RpcContext, _req: super::admin::PublishRequest, sink: ::grpcio::UnarySink<super::admin::PublishResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
    fn list_users(&mut self, ctx: ::grpcio::RpcContext, _req: super::admin::ListUsersRequest, sink: ::grpcio::UnarySink<super::admin::ListUsersResponse>) {
        grpcio::unimplemented_call!(ctx, sink)
    }
}

pub fn create_admin_service<S: AdminService + Send + Clone + 'static>(s: S) -> ::grpcio::Service {
    let mut builder = ::grpcio::ServiceBuilder::new();
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_ADMIN_SERVICE_DISCONNECT_USER, move |ctx, req, resp| {
        instance.disconnect_user(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_ADMIN_SERVICE_REMOVE_GROUP_MEMBER, move |ctx, req, resp| {
        instance.remove_group_member(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_ADMIN_SERVICE_DELETE_GROUP, move |ctx, req, resp| {
        instance.delete_group(ctx, req, resp)
    });
    let mut instance = s.clone();
    builder = builder.add_unary_handler(&METHOD_ADMIN_SERVICE_PUBLISH, move |ctx, req, resp| {
        instance.publish(ctx, req, resp)
    });
    let mut instance = s;
    builder = builder.add_unary_handler(&METHOD_ADMIN_SERVICE_LIST_USERS, move |ctx, req, resp| {
        instance.list_users(ctx, req, resp)
    });
    builder.build()
}
