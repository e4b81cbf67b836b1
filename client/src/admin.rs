//! `chat-client admin`: the operator's commands, one call each to the
//! server's admin listener (`chat.admin.v1.AdminService`, served on
//! `--admin-listen` only). This module owns the admin subcommands and their
//! flags ([`Action`]), the operator's secret read from its file
//! ([`Secret`]), and the lines a result or a failure prints: one line per
//! result on standard output, and a failure as one line naming the status
//! code and the server's message. It knows nothing of how the connection is
//! made (plain or TLS: [`crate::api`]) nor of the chat service's calls.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chat_proto::admin::{
    DeleteGroupRequest, DisconnectUserRequest, ListUsersRequest, PublishRequest,
    RemoveGroupMemberRequest, User,
};
use chat_proto::admin_grpc::AdminServiceClient;
use grpcio::{CallOption, RpcStatus, RpcStatusCode};
use protobuf::well_known_types::timestamp::Timestamp;
use structopt::StructOpt;

use crate::api::{bearer, status_of, Api};
use crate::format::{code_name, visible};

/// How long one admin call may take before it fails with
/// DEADLINE_EXCEEDED, so a stuck server cannot hang an operator's script.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The operator's commands, on the server's admin listener (needs --server
/// and --token-file)
///
/// Each makes one `chat.admin.v1.AdminService` call (`users --all`: one per
/// page) on --server, the server's --admin-listen address, with the secret
/// in --token-file, a copy of the server's --admin-token-file. Results print
/// one line each; a refused call prints one line, `chat-client: CODE:
/// message`, and exits 1.
#[derive(Debug, Clone, PartialEq, Eq, StructOpt)]
pub enum Action {
    /// Disconnects a user, and with --ban-secs bans its username
    ///
    /// Ends the user's stream with PERMISSION_DENIED ("disconnected by an
    /// operator: REASON"); the user leaves every group and its session cannot
    /// be resumed. Prints `disconnected USERNAME` (with --ban-secs: `banned
    /// USERNAME for Ns (disconnected if it was connected)`). NOT_FOUND when
    /// the user is not connected and no ban was asked.
    Disconnect {
        /// The user to disconnect (or ban)
        username: String,
        /// Why, as the user and the server's log are told
        #[structopt(long)]
        reason: Option<String>,
        /// Also refuse Connect for this username for N seconds, whether or
        /// not it is connected now
        #[structopt(long, value_name = "N")]
        ban_secs: Option<u32>,
    },
    /// Removes a member from a group
    ///
    /// The group is deleted if it empties; the members and the removed user
    /// get a REMOVED membership event where they asked for membership events.
    /// Prints `removed USERNAME from GROUP`. NOT_FOUND: no such group;
    /// FAILED_PRECONDITION: not a member.
    Remove {
        /// The group
        group: String,
        /// The member to remove
        username: String,
    },
    /// Deletes a group: every member, the group and its history
    ///
    /// Each member that asked for membership events gets a REMOVED event
    /// about itself. Prints `deleted group GROUP (N members removed)`.
    /// NOT_FOUND: no such group.
    DeleteGroup {
        /// The group
        group: String,
    },
    /// Sends a message as the operator to a connected user or a group
    ///
    /// No membership is needed; the message is delivered like any message,
    /// in the group's order and history, with `from_operator` set. Prints
    /// `published message ID to RECIPIENT`. NOT_FOUND: no such user or group.
    Publish {
        /// A connected user or a group
        recipient: String,
        /// The text (the same checks as SendMessage's)
        text: String,
        /// The sender the recipients see: 1-64 printable ASCII characters,
        /// no leading or trailing space [default: server]
        #[structopt(long, value_name = "NAME")]
        sender: Option<String>,
    },
    /// Lists the connected users, cluster-wide, sorted by name
    ///
    /// Prints `user NAME node=NODE connected_at=RFC3339 groups=N
    /// peer=ADDRESS` per user (`-` for an empty field), then `total: N
    /// listed, M connected`, then, when more pages follow, `next page:
    /// --page-token TOKEN`. INVALID_ARGUMENT: --limit over 1000, a bad page
    /// token.
    Users {
        /// Users per page (at most 1000) [default: 100]
        #[structopt(long, value_name = "N")]
        limit: Option<u32>,
        /// Every page, following the page tokens until the last
        #[structopt(long, conflicts_with = "page-token")]
        all: bool,
        /// Start at this page (a previous run's `next page:` token)
        #[structopt(long, value_name = "TOKEN")]
        page_token: Option<String>,
    },
}

/// The operator's secret, as `--admin-token-file` holds it on the server;
/// sent as `authorization: Bearer <secret>`. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Reads the secret from `path`, as the server reads its token file:
    /// one trailing newline (`\n` or `\r\n`) is stripped, every other byte
    /// counts.
    ///
    /// # Errors
    /// A one-line message naming the file when it cannot be read, or when
    /// what it holds cannot be a header value (empty, several lines, not
    /// printable ASCII).
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let bytes = std::fs::read(path)
            .map_err(|error| format!("--token-file: cannot read {}: {error}", path.display()))?;
        Secret::parse(&bytes)
            .map_err(|problem| format!("--token-file: {}: {problem}", path.display()))
    }

    /// The secret in a token file's `bytes`.
    ///
    /// # Errors
    /// What is wrong with them, in a few lower-case words.
    pub fn parse(bytes: &[u8]) -> Result<Secret, String> {
        let bytes = match bytes.strip_suffix(b"\n") {
            Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
            None => bytes,
        };
        if bytes.is_empty() {
            return Err("the file is empty; it must hold the server's admin secret".to_owned());
        }
        if bytes.contains(&b'\n') {
            return Err("the secret must be one line".to_owned());
        }
        // gRPC metadata values are visible ASCII and spaces.
        if !bytes.iter().all(|byte| (0x20..0x7f).contains(byte)) {
            return Err("the secret must be printable ASCII".to_owned());
        }
        Ok(Secret(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// A client of one server's admin listener, every call carrying the secret.
pub struct Admin {
    client: AdminServiceClient,
    secret: Secret,
}

impl Admin {
    /// An admin client on `api`'s connection (which must be to the admin
    /// listener's address), calling with `secret`.
    pub fn new(api: &Api, secret: Secret) -> Admin {
        Admin {
            client: AdminServiceClient::new(api.channel().clone()),
            secret,
        }
    }

    /// The options every call goes out with: the bearer secret and
    /// [`CALL_TIMEOUT`].
    fn options(&self) -> CallOption {
        bearer(&self.secret.0).timeout(CALL_TIMEOUT)
    }

    /// Makes the call `action` asks for and writes its result to `out`, one
    /// line per result.
    ///
    /// # Errors
    /// One line: a refused call as `CODE: message` ([`describe_failure`]),
    /// or why `out` could not be written.
    pub fn run(&self, action: &Action, out: &mut dyn Write) -> Result<(), String> {
        match action {
            Action::Disconnect {
                username,
                reason,
                ban_secs,
            } => {
                let mut request = DisconnectUserRequest::new();
                request.username = username.clone();
                request.reason = reason.clone().unwrap_or_default();
                request.ban_secs = ban_secs.unwrap_or(0);
                self.client
                    .disconnect_user_opt(&request, self.options())
                    .map_err(failure)?;
                let line = match request.ban_secs {
                    0 => format!("disconnected {}", visible(username)),
                    secs => format!(
                        "banned {} for {secs}s (disconnected if it was connected)",
                        visible(username)
                    ),
                };
                write_line(out, &line)
            }
            Action::Remove { group, username } => {
                let mut request = RemoveGroupMemberRequest::new();
                request.group = group.clone();
                request.username = username.clone();
                self.client
                    .remove_group_member_opt(&request, self.options())
                    .map_err(failure)?;
                write_line(
                    out,
                    &format!("removed {} from {}", visible(username), visible(group)),
                )
            }
            Action::DeleteGroup { group } => {
                let mut request = DeleteGroupRequest::new();
                request.group = group.clone();
                let response = self
                    .client
                    .delete_group_opt(&request, self.options())
                    .map_err(failure)?;
                write_line(
                    out,
                    &format!(
                        "deleted group {} ({} removed)",
                        visible(group),
                        count(response.removed, "member")
                    ),
                )
            }
            Action::Publish {
                recipient,
                text,
                sender,
            } => {
                let mut request = PublishRequest::new();
                request.recipient = recipient.clone();
                request.text = text.clone();
                request.sender = sender.clone().unwrap_or_default();
                let response = self
                    .client
                    .publish_opt(&request, self.options())
                    .map_err(failure)?;
                write_line(
                    out,
                    &format!(
                        "published message {} to {}",
                        response.message_id,
                        visible(recipient)
                    ),
                )
            }
            Action::Users {
                limit,
                all,
                page_token,
            } => self.list_users(limit.unwrap_or(0), *all, page_token.as_deref(), out),
        }
    }

    /// `users`: one page from `page_token` (empty: the first), or with
    /// `all` every page until the last.
    fn list_users(
        &self,
        limit: u32,
        all: bool,
        page_token: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        let mut request = ListUsersRequest::new();
        request.limit = limit;
        request.page_token = page_token.unwrap_or_default().to_owned();
        let mut listed = 0usize;
        loop {
            let page = self
                .client
                .list_users_opt(&request, self.options())
                .map_err(failure)?;
            for user in &page.users {
                write_line(out, &describe_user(user))?;
            }
            listed += page.users.len();
            let next = page.next_page_token;
            let more = !next.is_empty();
            if all && more {
                // A server that hands back the token it was given would
                // page forever.
                if next == request.page_token {
                    return Err("the server answered a page token with the same token".to_owned());
                }
                request.page_token = next;
                continue;
            }
            write_line(
                out,
                &format!("total: {listed} listed, {} connected", page.user_count),
            )?;
            if more {
                write_line(out, &format!("next page: --page-token {}", visible(&next)))?;
            }
            return Ok(());
        }
    }
}

/// One connected user's line: `user alice node=- connected_at=2025-05-01T12:00:00.123Z
/// groups=2 peer=ipv4:127.0.0.1:40000` (`-` for an empty field).
pub fn describe_user(user: &User) -> String {
    let or_dash = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            visible(text).replace(' ', "_")
        }
    };
    format!(
        "user {} node={} connected_at={} groups={} peer={}",
        or_dash(&user.username),
        or_dash(&user.node),
        rfc3339(user.connected_at.as_ref()),
        user.group_count,
        or_dash(&user.peer)
    )
}

/// A timestamp in RFC 3339, UTC, to the millisecond
/// (`2025-05-01T12:00:00.123Z`); `-` when unset or out of range.
pub fn rfc3339(at: Option<&Timestamp>) -> String {
    at.and_then(|at| {
        let nanos = u32::try_from(at.nanos).ok()?;
        chrono::DateTime::from_timestamp(at.seconds, nanos)
    })
    .map_or_else(
        || "-".to_owned(),
        |at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// A refused call as one line: `NOT_FOUND: no such group "lab"`. An
/// UNIMPLEMENTED answer most likely means the address is the chat
/// listener's, which has no admin service, so the line says so.
pub fn describe_failure(status: &RpcStatus) -> String {
    let code = status.code();
    let message = visible(status.message());
    let mut line = if message.is_empty() {
        code_name(code)
    } else {
        format!("{}: {message}", code_name(code))
    };
    if code == RpcStatusCode::UNIMPLEMENTED {
        line.push_str(" (is --server the server's --admin-listen address?)");
    }
    line
}

/// A failed call's one line.
fn failure(error: grpcio::Error) -> String {
    describe_failure(&status_of(error))
}

/// `1 member`, `3 members`.
fn count(n: u32, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Writes `line` and a newline to `out`.
fn write_line(out: &mut dyn Write, line: &str) -> Result<(), String> {
    writeln!(out, "{line}").map_err(|error| format!("cannot write the output: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Action, String> {
        Action::from_iter_safe(std::iter::once("admin").chain(args.iter().copied()))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn one_trailing_newline_is_stripped_from_the_secret() {
        let secret = "a".repeat(64);
        for file in [
            secret.clone(),
            format!("{secret}\n"),
            format!("{secret}\r\n"),
        ] {
            assert_eq!(Secret::parse(file.as_bytes()), Ok(Secret(secret.clone())));
        }
        // A carriage return is stripped only before the newline.
        assert!(Secret::parse(format!("{secret}\r").as_bytes()).is_err());
        // Only one: a second newline makes it two lines.
        assert!(Secret::parse(format!("{secret}\n\n").as_bytes()).is_err());
        // Spaces count, as on the server.
        assert_eq!(
            Secret::parse(b" s3cret \n"),
            Ok(Secret(" s3cret ".to_owned()))
        );
    }

    #[test]
    fn a_secret_that_cannot_be_a_header_is_refused() {
        assert!(Secret::parse(b"").unwrap_err().contains("empty"));
        assert!(Secret::parse(b"\n").unwrap_err().contains("empty"));
        assert!(Secret::parse(b"one\ntwo\n")
            .unwrap_err()
            .contains("one line"));
        assert!(Secret::parse("é".as_bytes()).unwrap_err().contains("ASCII"));
        assert!(Secret::parse(b"a\tb").unwrap_err().contains("ASCII"));
    }

    #[test]
    fn a_missing_token_file_is_one_line_naming_it() {
        let error = Secret::from_file(Path::new("/nonexistent/admin.token")).unwrap_err();
        assert!(
            error.starts_with("--token-file: cannot read /nonexistent/admin.token: "),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn the_secret_is_never_shown() {
        let secret = Secret::parse(b"do-not-print-me").unwrap();
        assert!(!format!("{secret:?}").contains("do-not-print-me"));
    }

    #[test]
    fn the_subcommands_parse_their_arguments() {
        assert_eq!(
            parse(&[
                "disconnect",
                "alice",
                "--reason",
                "spam",
                "--ban-secs",
                "600"
            ]),
            Ok(Action::Disconnect {
                username: "alice".into(),
                reason: Some("spam".into()),
                ban_secs: Some(600),
            })
        );
        assert_eq!(
            parse(&["remove", "lab", "alice"]),
            Ok(Action::Remove {
                group: "lab".into(),
                username: "alice".into(),
            })
        );
        assert_eq!(
            parse(&["delete-group", "lab"]),
            Ok(Action::DeleteGroup {
                group: "lab".into()
            })
        );
        assert_eq!(
            parse(&["publish", "lab", "maintenance at noon", "--sender", "ops"]),
            Ok(Action::Publish {
                recipient: "lab".into(),
                text: "maintenance at noon".into(),
                sender: Some("ops".into()),
            })
        );
        assert_eq!(
            parse(&["users", "--limit", "2", "--all"]),
            Ok(Action::Users {
                limit: Some(2),
                all: true,
                page_token: None,
            })
        );
        assert!(parse(&["users", "--all", "--page-token", "x"]).is_err());
        assert!(parse(&["disconnect"]).is_err());
        assert!(parse(&["disconnect", "alice", "--ban-secs", "-1"]).is_err());
        assert!(parse(&["remove", "lab"]).is_err());
    }

    #[test]
    fn a_user_is_one_line_with_dashes_for_empty_fields() {
        let mut user = User::new();
        user.username = "alice".into();
        user.group_count = 2;
        user.peer = "ipv4:127.0.0.1:40000".into();
        let mut at = Timestamp::new();
        at.seconds = 1_746_100_800;
        at.nanos = 123_000_000;
        user.connected_at = Some(at).into();
        assert_eq!(
            describe_user(&user),
            "user alice node=- connected_at=2025-05-01T12:00:00.123Z groups=2 \
             peer=ipv4:127.0.0.1:40000"
        );
        user.node = "node 1\n".into();
        user.connected_at = None.into();
        assert_eq!(
            describe_user(&user),
            "user alice node=node_1\u{240a} connected_at=- groups=2 peer=ipv4:127.0.0.1:40000"
        );
    }

    #[test]
    fn a_failure_is_one_line_with_the_code_name() {
        let status = RpcStatus::with_message(RpcStatusCode::NOT_FOUND, "no group \"lab\"".into());
        assert_eq!(describe_failure(&status), "NOT_FOUND: no group \"lab\"");
        let status = RpcStatus::with_message(RpcStatusCode::UNAUTHENTICATED, "bad\nsecret".into());
        assert_eq!(
            describe_failure(&status),
            "UNAUTHENTICATED: bad\u{240a}secret"
        );
        let status = RpcStatus::new(RpcStatusCode::UNIMPLEMENTED);
        assert_eq!(
            describe_failure(&status),
            "UNIMPLEMENTED (is --server the server's --admin-listen address?)"
        );
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(1, "member"), "1 member");
        assert_eq!(count(0, "member"), "0 members");
        assert_eq!(count(3, "member"), "3 members");
    }
}
