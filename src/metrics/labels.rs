//! The label values the metrics are broken down by, as fixed enums: the
//! chat service's RPCs, gRPC status codes in Go's spelling (what
//! go-grpc-middleware's dashboards query), and why a connection ended. Each
//! enum lists every value, so every series exists from the first scrape.

/// The `grpc_service` label of every chat RPC.
pub const CHAT_SERVICE: &str = "chat.v1.ChatService";
/// The operator's service, served on the admin listener.
pub const ADMIN_SERVICE: &str = "chat.admin.v1.AdminService";

/// One RPC of `chat.v1.ChatService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// `Connect`, the server stream.
    Connect,
    /// `CreateGroupChat`.
    CreateGroupChat,
    /// `JoinGroupChat`.
    JoinGroupChat,
    /// `LeaveGroupChat`.
    LeaveGroupChat,
    /// `SendMessage`.
    SendMessage,
    /// `ListChannels`.
    ListChannels,
    /// `GetHistory`.
    GetHistory,
    /// `ListGroupMembers`.
    ListGroupMembers,
    /// `SendTyping`.
    SendTyping,
    /// `chat.admin.v1.AdminService/DisconnectUser`.
    DisconnectUser,
    /// `chat.admin.v1.AdminService/RemoveGroupMember`.
    RemoveGroupMember,
    /// `chat.admin.v1.AdminService/DeleteGroup`.
    DeleteGroup,
    /// `chat.admin.v1.AdminService/Publish`.
    Publish,
    /// `chat.admin.v1.AdminService/ListUsers`.
    ListUsers,
}

impl Rpc {
    /// Every RPC, in the order the series are written.
    pub const ALL: [Rpc; 14] = [
        Rpc::Connect,
        Rpc::CreateGroupChat,
        Rpc::JoinGroupChat,
        Rpc::LeaveGroupChat,
        Rpc::SendMessage,
        Rpc::ListChannels,
        Rpc::GetHistory,
        Rpc::ListGroupMembers,
        Rpc::SendTyping,
        Rpc::DisconnectUser,
        Rpc::RemoveGroupMember,
        Rpc::DeleteGroup,
        Rpc::Publish,
        Rpc::ListUsers,
    ];

    /// The method's name: the `grpc_method` label, and the name logs use.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::Connect => "Connect",
            Rpc::CreateGroupChat => "CreateGroupChat",
            Rpc::JoinGroupChat => "JoinGroupChat",
            Rpc::LeaveGroupChat => "LeaveGroupChat",
            Rpc::SendMessage => "SendMessage",
            Rpc::ListChannels => "ListChannels",
            Rpc::GetHistory => "GetHistory",
            Rpc::ListGroupMembers => "ListGroupMembers",
            Rpc::SendTyping => "SendTyping",
            Rpc::DisconnectUser => "DisconnectUser",
            Rpc::RemoveGroupMember => "RemoveGroupMember",
            Rpc::DeleteGroup => "DeleteGroup",
            Rpc::Publish => "Publish",
            Rpc::ListUsers => "ListUsers",
        }
    }

    /// The service the method belongs to: the `grpc_service` label.
    pub fn service(self) -> &'static str {
        match self {
            Rpc::DisconnectUser
            | Rpc::RemoveGroupMember
            | Rpc::DeleteGroup
            | Rpc::Publish
            | Rpc::ListUsers => ADMIN_SERVICE,
            _ => CHAT_SERVICE,
        }
    }

    /// The method's path, `/chat.v1.ChatService/<name>`.
    pub fn path(self) -> &'static str {
        match self {
            Rpc::Connect => "/chat.v1.ChatService/Connect",
            Rpc::CreateGroupChat => "/chat.v1.ChatService/CreateGroupChat",
            Rpc::JoinGroupChat => "/chat.v1.ChatService/JoinGroupChat",
            Rpc::LeaveGroupChat => "/chat.v1.ChatService/LeaveGroupChat",
            Rpc::SendMessage => "/chat.v1.ChatService/SendMessage",
            Rpc::ListChannels => "/chat.v1.ChatService/ListChannels",
            Rpc::GetHistory => "/chat.v1.ChatService/GetHistory",
            Rpc::ListGroupMembers => "/chat.v1.ChatService/ListGroupMembers",
            Rpc::SendTyping => "/chat.v1.ChatService/SendTyping",
            Rpc::DisconnectUser => "/chat.admin.v1.AdminService/DisconnectUser",
            Rpc::RemoveGroupMember => "/chat.admin.v1.AdminService/RemoveGroupMember",
            Rpc::DeleteGroup => "/chat.admin.v1.AdminService/DeleteGroup",
            Rpc::Publish => "/chat.admin.v1.AdminService/Publish",
            Rpc::ListUsers => "/chat.admin.v1.AdminService/ListUsers",
        }
    }

    /// The `grpc_type` label: `server_stream` for Connect, else `unary`.
    pub fn grpc_type(self) -> &'static str {
        if self.is_unary() {
            "unary"
        } else {
            "server_stream"
        }
    }

    /// Whether the method is unary (and so has a handling-time histogram).
    pub fn is_unary(self) -> bool {
        self != Rpc::Connect
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// A gRPC status code, named as Go's `codes.Code` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(u8);

/// Go's names of the 17 gRPC status codes, indexed by code number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

impl Code {
    /// How many codes there are.
    pub const COUNT: usize = CODE_NAMES.len();
    /// `OK`.
    pub const OK: Code = Code(0);
    /// `Unknown`, also what a number outside the 17 codes counts as.
    pub const UNKNOWN: Code = Code(2);

    /// The code with gRPC number `number` (as `RpcStatusCode` converts to
    /// `i32`); an unknown number is `Unknown`, as gRPC itself treats it.
    pub fn from_number(number: i32) -> Code {
        match u8::try_from(number) {
            Ok(index) if usize::from(index) < Code::COUNT => Code(index),
            _ => Code::UNKNOWN,
        }
    }

    /// Every code, `OK` first.
    pub fn all() -> impl Iterator<Item = Code> {
        (0..Code::COUNT as u8).map(Code)
    }

    /// Go's name: the `grpc_code` and `code` label value.
    pub fn name(self) -> &'static str {
        CODE_NAMES[self.index()]
    }

    pub(super) fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Declares [`DisconnectReason`] from one `Variant => "label"` line per
/// reason: adding a reason is one line here (the compiler then points at
/// the one `match` in the adapter that must produce it).
macro_rules! disconnect_reasons {
    ($($(#[$doc:meta])* $variant:ident => $label:literal,)+) => {
        /// Why a Connect stream ended: the `reason` label of
        /// `chat_disconnects_total`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum DisconnectReason {
            $($(#[$doc])* $variant,)+
        }

        impl DisconnectReason {
            /// Every reason, in the order the series are written.
            pub const ALL: &'static [DisconnectReason] = &[$(DisconnectReason::$variant,)+];

            /// The label value.
            pub fn label(self) -> &'static str {
                match self {
                    $(DisconnectReason::$variant => $label,)+
                }
            }
        }
    };
}

disconnect_reasons! {
    /// The client ended the stream, or its connection died (cancel, dead
    /// peer, keepalive timeout).
    Client => "client",
    /// The server dropped a client that did not read fast enough.
    SlowConsumer => "slow_consumer",
    /// The server ended the stream because it is shutting down.
    Shutdown => "shutdown",
    /// A cluster node lost its place in the cluster and ended every local
    /// stream.
    Fenced => "fenced",
    /// In token mode, the stream's token expired.
    TokenExpired => "token_expired",
    /// An operator disconnected the user (`AdminService.DisconnectUser`).
    Operator => "operator",
}

impl DisconnectReason {
    /// How many reasons there are.
    pub const COUNT: usize = DisconnectReason::ALL.len();

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_numbered_as_grpc_numbers_them() {
        assert_eq!(Code::from_number(0).name(), "OK");
        assert_eq!(Code::from_number(1).name(), "Canceled");
        assert_eq!(Code::from_number(5).name(), "NotFound");
        assert_eq!(Code::from_number(8).name(), "ResourceExhausted");
        assert_eq!(Code::from_number(14).name(), "Unavailable");
        assert_eq!(Code::from_number(16).name(), "Unauthenticated");
        assert_eq!(Code::from_number(17), Code::UNKNOWN);
        assert_eq!(Code::from_number(-1), Code::UNKNOWN);
        assert_eq!(Code::all().count(), 17);
    }

    #[test]
    fn rpcs_index_their_own_position() {
        for (index, rpc) in Rpc::ALL.iter().enumerate() {
            assert_eq!(rpc.index(), index);
            assert_eq!(rpc.path(), format!("/{}/{}", rpc.service(), rpc.name()));
        }
        for (index, reason) in DisconnectReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), index);
        }
    }
}
