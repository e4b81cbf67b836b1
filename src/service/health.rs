//! The standard health checking service (`grpc.health.v1.Health`): SERVING
//! for the whole server (`""`) and for `chat.v1.ChatService` while the server
//! runs, NOT_SERVING from the moment shutdown starts. `Check` answers
//! NOT_FOUND for any other service; `Watch` streams the current status and
//! every change, and ends with UNAVAILABLE when the server stops.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chat_proto::health::health_check_response::ServingStatus;
use chat_proto::health::{HealthCheckRequest, HealthCheckResponse};
use chat_proto::health_grpc::Health;
use futures::channel::mpsc::{unbounded, UnboundedSender};
use futures::{FutureExt, SinkExt, StreamExt};
use grpcio::{
    MethodType, RpcContext, RpcStatus, RpcStatusCode, ServerStreamingSink, ServiceBuilder,
    UnarySink, WriteFlags,
};
use slog::{debug, Logger};

use super::codec::{bad_request, method, RequestCodec};
use super::status::{finish_with_status, refuse_stream};

/// The services whose health this server reports.
pub const CHECKED_SERVICES: [&str; 2] = ["", "chat.v1.ChatService"];

/// The health service: a cheap `Clone` handle on the shared status.
#[derive(Clone)]
pub struct HealthService {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    log: Logger,
}

struct State {
    /// False from the moment shutdown starts.
    serving: bool,
    /// Whether the chat engine can serve (a cluster node that reaches Redis
    /// and holds its lease); always true for the embedded engine.
    engine_serving: bool,
    /// Open Watch calls: whether each watches a known service, and where its
    /// updates go. Dropping the sender ends the call.
    watchers: Vec<(bool, UnboundedSender<ServingStatus>)>,
}

impl HealthService {
    /// A health service reporting SERVING.
    pub fn new(log: Logger) -> HealthService {
        HealthService {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    serving: true,
                    engine_serving: true,
                    watchers: Vec::new(),
                }),
                log,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reports NOT_SERVING from now on, tells every watcher, and ends their
    /// streams (with UNAVAILABLE) once the update is sent.
    pub fn set_not_serving(&self) {
        let watchers = {
            let mut state = self.state();
            state.serving = false;
            std::mem::take(&mut state.watchers)
        };
        for (known, watcher) in watchers {
            if known {
                let _ = watcher.unbounded_send(ServingStatus::NOT_SERVING);
            }
        }
    }

    /// Reports whether the chat engine can serve, telling every watcher
    /// when that changes the status; shutdown's NOT_SERVING stays.
    pub fn set_engine_serving(&self, serving: bool) {
        let mut state = self.state();
        if !state.serving || state.engine_serving == serving {
            state.engine_serving = serving;
            return;
        }
        state.engine_serving = serving;
        let status = if serving {
            ServingStatus::SERVING
        } else {
            ServingStatus::NOT_SERVING
        };
        state
            .watchers
            .retain(|(known, watcher)| !*known || watcher.unbounded_send(status).is_ok());
    }

    /// The status of `service`, or `None` for a service this server does not
    /// report on.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        if !CHECKED_SERVICES.contains(&service) {
            return None;
        }
        let state = self.state();
        Some(if state.serving && state.engine_serving {
            ServingStatus::SERVING
        } else {
            ServingStatus::NOT_SERVING
        })
    }
}

/// `grpc.health.v1.Health` as grpcio serves it: the generated trait's
/// methods under the protocol's paths, with requests decoded by
/// `codec` ([`super::codec`]) so a malformed one gets INVALID_ARGUMENT.
pub fn health_service(health: HealthService, codec: RequestCodec) -> grpcio::Service {
    let check = method::<HealthCheckRequest, HealthCheckResponse>(
        MethodType::Unary,
        "/grpc.health.v1.Health/Check",
    );
    let watch = method::<HealthCheckRequest, HealthCheckResponse>(
        MethodType::ServerStreaming,
        "/grpc.health.v1.Health/Watch",
    );
    let mut checker = health.clone();
    let mut watcher = health;
    ServiceBuilder::new()
        .add_unary_handler(&check, move |ctx, request, sink| {
            match codec.decode(request) {
                Ok(request) => checker.check(ctx, request, sink),
                Err(error) => {
                    let log = checker.inner.log.clone();
                    let status = bad_request("Health.Check", &log, &error);
                    finish_with_status(&ctx, sink, &log, "Health.Check", Err(status));
                }
            }
        })
        .add_server_streaming_handler(&watch, move |ctx, request, sink| {
            match codec.decode(request) {
                Ok(request) => watcher.watch(ctx, request, sink),
                Err(error) => {
                    let log = &watcher.inner.log;
                    let status = bad_request("Health.Watch", log, &error);
                    refuse_stream(&ctx, sink, log, "Health.Watch", status);
                }
            }
        })
        .build()
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    let mut response = HealthCheckResponse::new();
    response.status = status.into();
    response
}

impl Health for HealthService {
    fn check(
        &mut self,
        ctx: RpcContext<'_>,
        req: HealthCheckRequest,
        sink: UnarySink<HealthCheckResponse>,
    ) {
        let result = match self.status(&req.service) {
            Some(status) => Ok(response(status)),
            None => Err(RpcStatus::with_message(
                RpcStatusCode::NOT_FOUND,
                format!("no health status for service {:?}", req.service),
            )),
        };
        finish_with_status(&ctx, sink, &self.inner.log, "Health.Check", result);
    }

    fn watch(
        &mut self,
        ctx: RpcContext<'_>,
        req: HealthCheckRequest,
        mut sink: ServerStreamingSink<HealthCheckResponse>,
    ) {
        let (updates, received) = unbounded();
        let known = CHECKED_SERVICES.contains(&req.service.as_str());
        {
            let mut state = self.state();
            let current = match (known, state.serving) {
                (false, _) => ServingStatus::SERVICE_UNKNOWN,
                (true, true) => ServingStatus::SERVING,
                (true, false) => ServingStatus::NOT_SERVING,
            };
            let _ = updates.unbounded_send(current);
            if state.serving {
                // Forget watchers whose calls have ended.
                state.watchers.retain(|(_, watcher)| !watcher.is_closed());
                state.watchers.push((known, updates));
            }
        }
        let mut responses = received.map(|status| Ok((response(status), WriteFlags::default())));
        let log = self.inner.log.clone();
        ctx.spawn(
            async move {
                sink.send_all(&mut responses).await?;
                // The updates ended: the server is shutting down.
                sink.fail(RpcStatus::with_message(
                    RpcStatusCode::UNAVAILABLE,
                    "the server is shutting down".to_owned(),
                ))
                .await
            }
            .map(move |outcome| {
                if let Err(error) = outcome {
                    debug!(log, "health watch ended"; "error" => %error);
                }
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn not_serving_reaches_every_watcher_of_a_known_service_then_ends_them() {
        let health = HealthService::new(Logger::root(slog::Discard, slog::o!()));
        assert_eq!(health.status(""), Some(ServingStatus::SERVING));
        assert_eq!(
            health.status("chat.v1.ChatService"),
            Some(ServingStatus::SERVING)
        );
        assert_eq!(health.status("other.Service"), None);
        let (known, known_updates) = unbounded();
        let (unknown, unknown_updates) = unbounded();
        health.state().watchers.push((true, known));
        health.state().watchers.push((false, unknown));
        health.set_not_serving();
        assert_eq!(health.status(""), Some(ServingStatus::NOT_SERVING));
        let known: Vec<_> = futures::executor::block_on(known_updates.collect());
        assert_eq!(known, [ServingStatus::NOT_SERVING]);
        let unknown: Vec<_> = futures::executor::block_on(unknown_updates.collect());
        assert!(unknown.is_empty());
    }
}
