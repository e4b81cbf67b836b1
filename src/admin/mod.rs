//! The operator's gRPC adapter: implements `chat.admin.v1.AdminService`
//! on the admin listener (`--admin-listen`), beside the chat adapter in
//! `crate::service` and as thin: it checks the operator's secret
//! ([`AdminSecret`]), turns each request into one engine operation, logs
//! the action at info with the operator's reason, and maps domain errors to
//! statuses the same way the chat adapter does. Which engine is behind it is
//! not its business; every action is the engine's, so in a cluster it
//! reaches users and groups on every node. It owns its configuration
//! ([`AdminConfig`]).

mod secret;

use std::sync::Arc;

use chat_proto::admin::{
    DeleteGroupRequest, DeleteGroupResponse, DisconnectUserRequest, DisconnectUserResponse,
    ListUsersRequest, ListUsersResponse, PublishRequest, PublishResponse, RemoveGroupMemberRequest,
    RemoveGroupMemberResponse, User,
};
use chat_proto::admin_grpc::AdminService;
use grpcio::{RpcContext, ServiceBuilder, UnarySink};
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::MessageField;
use slog::{info, Logger};

use crate::domain::{admin::ban_length, operator_sender, ChatEngine, Left, MemberQuery, UserPage};
use crate::metrics::{Metrics, Rpc};
use crate::service::codec::RequestCodec;
use crate::service::status::{finish_with_status, guarded};
use crate::service::{add_unary, Adapter};
pub use secret::{AdminConfig, AdminSecret, MIN_SECRET_BYTES};

/// The name the admin adapter logs its caller as.
const OPERATOR: &str = "operator";

/// The admin service as grpcio sees it: a cheap `Clone` handle around the
/// engine, the metrics, the logger and the secret.
#[derive(Clone)]
pub struct AdminHandler {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn ChatEngine>,
    metrics: Metrics,
    log: Logger,
    secret: AdminSecret,
}

impl AdminHandler {
    /// A handler carrying out operator actions on `engine`, for callers
    /// that present `secret`.
    pub fn new(
        engine: Arc<dyn ChatEngine>,
        secret: AdminSecret,
        metrics: Metrics,
        log: Logger,
    ) -> AdminHandler {
        AdminHandler {
            inner: Arc::new(Inner {
                engine,
                metrics,
                log,
                secret,
            }),
        }
    }

    /// Lets the call through when it carries the secret; otherwise
    /// answers it UNAUTHENTICATED (logged without the header) and gives
    /// `None`.
    fn operator<R: Send + 'static>(
        &self,
        ctx: &RpcContext<'_>,
        sink: UnarySink<R>,
        rpc: Rpc,
    ) -> Option<UnarySink<R>> {
        match self.inner.secret.check(ctx) {
            Ok(()) => Some(sink),
            Err(status) => {
                info!(self.inner.log, "admin call refused";
                    "rpc" => rpc.name(), "code" => "UNAUTHENTICATED", "error" => status.message());
                finish_with_status(ctx, sink, &self.inner.log, rpc.name(), Err(status));
                None
            }
        }
    }
}

impl Adapter for AdminHandler {
    fn log(&self) -> &Logger {
        &self.inner.log
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// `chat.admin.v1.AdminService` as grpcio serves it, with requests decoded
/// by `codec` and every call counted under its own service name.
pub fn admin_service(handler: AdminHandler, codec: RequestCodec) -> grpcio::Service {
    let builder = ServiceBuilder::new();
    let builder = add_unary(
        builder,
        Rpc::DisconnectUser,
        &handler,
        codec,
        <AdminHandler as AdminService>::disconnect_user,
    );
    let builder = add_unary(
        builder,
        Rpc::RemoveGroupMember,
        &handler,
        codec,
        <AdminHandler as AdminService>::remove_group_member,
    );
    let builder = add_unary(
        builder,
        Rpc::DeleteGroup,
        &handler,
        codec,
        <AdminHandler as AdminService>::delete_group,
    );
    let builder = add_unary(
        builder,
        Rpc::Publish,
        &handler,
        codec,
        <AdminHandler as AdminService>::publish,
    );
    let builder = add_unary(
        builder,
        Rpc::ListUsers,
        &handler,
        codec,
        <AdminHandler as AdminService>::list_users,
    );
    builder.build()
}

impl AdminService for AdminHandler {
    fn disconnect_user(
        &mut self,
        ctx: RpcContext<'_>,
        req: DisconnectUserRequest,
        sink: UnarySink<DisconnectUserResponse>,
    ) {
        let Some(sink) = self.operator(&ctx, sink, Rpc::DisconnectUser) else {
            return;
        };
        let DisconnectUserRequest {
            username,
            reason,
            ban_secs,
            ..
        } = req;
        let ban = ban_length(ban_secs);
        let reply = guarded(|| Ok(self.inner.engine.disconnect_user(&username, &reason, ban)));
        self.answer(
            &ctx,
            sink,
            Rpc::DisconnectUser,
            OPERATOR.to_owned(),
            reply,
            move |log, _, departure| {
                info!(log, "user disconnected by an operator";
                    "groups_left" => departure.groups_left,
                    "ban_secs" => ban_secs, "reason" => &reason, "user" => &username);
                for group in &departure.groups_deleted {
                    info!(log, "group deleted";
                        "group" => &**group, "reason" => "last member disconnected");
                }
                (DisconnectUserResponse::new(), None)
            },
        );
    }

    fn remove_group_member(
        &mut self,
        ctx: RpcContext<'_>,
        req: RemoveGroupMemberRequest,
        sink: UnarySink<RemoveGroupMemberResponse>,
    ) {
        let Some(sink) = self.operator(&ctx, sink, Rpc::RemoveGroupMember) else {
            return;
        };
        let RemoveGroupMemberRequest {
            group, username, ..
        } = req;
        let reply = guarded(|| Ok(self.inner.engine.remove_member(&group, &username)));
        self.answer(
            &ctx,
            sink,
            Rpc::RemoveGroupMember,
            OPERATOR.to_owned(),
            reply,
            move |log, _, left| {
                info!(log, "member removed by an operator"; "group" => &group, "user" => &username);
                if left == Left::GroupDeleted {
                    info!(log, "group deleted"; "group" => &group, "reason" => "last member removed");
                }
                (RemoveGroupMemberResponse::new(), None)
            },
        );
    }

    fn delete_group(
        &mut self,
        ctx: RpcContext<'_>,
        req: DeleteGroupRequest,
        sink: UnarySink<DeleteGroupResponse>,
    ) {
        let Some(sink) = self.operator(&ctx, sink, Rpc::DeleteGroup) else {
            return;
        };
        let group = req.group;
        let reply = guarded(|| Ok(self.inner.engine.delete_group(&group)));
        self.answer(
            &ctx,
            sink,
            Rpc::DeleteGroup,
            OPERATOR.to_owned(),
            reply,
            move |log, _, removed| {
                info!(log, "group deleted";
                    "members_removed" => removed, "reason" => "deleted by an operator",
                    "group" => &group);
                let mut response = DeleteGroupResponse::new();
                response.removed = removed;
                (response, None)
            },
        );
    }

    fn publish(
        &mut self,
        ctx: RpcContext<'_>,
        req: PublishRequest,
        sink: UnarySink<PublishResponse>,
    ) {
        let Some(sink) = self.operator(&ctx, sink, Rpc::Publish) else {
            return;
        };
        let PublishRequest {
            recipient,
            text,
            sender,
            ..
        } = req;
        let engine = &self.inner.engine;
        let reply = guarded(|| {
            let sender = operator_sender(&sender)?;
            Ok(engine.publish(&recipient, text, sender))
        });
        self.answer(
            &ctx,
            sink,
            Rpc::Publish,
            OPERATOR.to_owned(),
            reply,
            move |log, _, (sent, wakeups)| {
                info!(log, "message published by an operator";
                    "recipients" => sent.recipients, "id" => sent.id,
                    "sender" => &sender, "recipient" => &recipient);
                for name in &sent.evicted {
                    info!(log, "slow consumer dropped"; "user" => &**name, "group" => &recipient);
                }
                let mut response = PublishResponse::new();
                response.message_id = sent.id;
                response.sent_at = MessageField::some(Timestamp::from(sent.sent_at));
                (response, Some(wakeups))
            },
        );
    }

    fn list_users(
        &mut self,
        ctx: RpcContext<'_>,
        req: ListUsersRequest,
        sink: UnarySink<ListUsersResponse>,
    ) {
        let Some(sink) = self.operator(&ctx, sink, Rpc::ListUsers) else {
            return;
        };
        let engine = &self.inner.engine;
        let reply = guarded(|| {
            let query = MemberQuery::new(req.limit, &req.page_token)?;
            Ok(engine.list_users(query))
        });
        self.answer(
            &ctx,
            sink,
            Rpc::ListUsers,
            OPERATOR.to_owned(),
            reply,
            |_, _, page| (users_to_proto(&page), None),
        );
    }
}

/// The reply to ListUsers.
fn users_to_proto(page: &UserPage) -> ListUsersResponse {
    let mut out = ListUsersResponse::new();
    out.users = page
        .users
        .iter()
        .map(|user| {
            let mut entry = User::new();
            entry.username = user.name.to_string();
            entry.node = user.node.clone();
            entry.connected_at = MessageField::some(Timestamp::from(user.connected_at));
            entry.group_count = user.group_count;
            entry.peer = user.peer.clone();
            entry
        })
        .collect();
    out.next_page_token = page.next_page_token.clone();
    out.user_count = page.user_count;
    out
}
