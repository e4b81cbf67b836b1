//! `chat-client`: a command-line client for the chat service. `demo` runs a
//! scripted session that checks every outcome; `chat` is an interactive chat
//! for a person; `admin` makes the operator's calls on the admin listener.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use structopt::StructOpt;

use chat_client::admin::{self, Admin, Secret};
use chat_client::api::{Api, Credentials, TlsOptions};
use chat_client::chat::command::{COMMANDS, KEYS, NAME_RULE};
use chat_client::chat::Mode;
use chat_client::{chat, demo};

#[derive(Debug, StructOpt)]
#[structopt(
    name = "chat-client",
    about = "Command-line client for the chat service"
)]
struct Opt {
    /// The server's address, as host:port [default: 127.0.0.1:13111; `admin`
    /// needs it: the server's --admin-listen address]
    #[structopt(long, global = true)]
    server: Option<String>,

    /// Token mode: the token (JWT) every call carries as
    /// `authorization: Bearer <TOKEN>`
    #[structopt(long, global = true, conflicts_with = "token-file")]
    token: Option<String>,

    /// Token mode: read the token from this file (surrounding whitespace is
    /// trimmed). For `admin`: the operator's secret, the content of the
    /// server's --admin-token-file (one trailing newline is stripped)
    #[structopt(long, global = true, parse(from_os_str))]
    token_file: Option<PathBuf>,

    /// Connect over TLS, trusting this CA certificate (PEM) for the server's
    /// certificate
    #[structopt(long, global = true, parse(from_os_str))]
    tls_ca: Option<PathBuf>,

    /// Mutual TLS: this client's certificate (PEM); needs --tls-key and --tls-ca
    #[structopt(long, global = true, parse(from_os_str), requires_all = &["tls-key", "tls-ca"])]
    tls_cert: Option<PathBuf>,

    /// Mutual TLS: the private key of --tls-cert (PEM)
    #[structopt(long, global = true, parse(from_os_str), requires = "tls-cert")]
    tls_key: Option<PathBuf>,

    /// TLS: the name the server's certificate must carry, when it is not the
    /// host in --server
    #[structopt(long, global = true, requires = "tls-ca")]
    tls_server_name: Option<String>,

    #[structopt(subcommand)]
    command: Command,
}

#[derive(Debug, StructOpt)]
enum Command {
    /// Run a scripted session with three users that exercises every RPC and
    /// error case; exits non-zero if any outcome differs from the expected one
    Demo,
    /// Chat interactively as a user: full screen on a terminal, plain lines
    /// (one command or text per input line) when input or output is not a
    /// terminal
    #[structopt(after_help = chat_help())]
    Chat {
        /// The username to connect as (see the name rule below)
        #[structopt(long)]
        user: String,
    },
    // The help text is `admin::Action`'s doc.
    Admin {
        #[structopt(subcommand)]
        action: admin::Action,
    },
}

/// Where `demo` and `chat` connect without `--server`.
const DEFAULT_SERVER: &str = "127.0.0.1:13111";

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS options the flags ask for; `None` without `--tls-ca`.
fn tls_options(opt: &Opt) -> Result<Option<TlsOptions>, String> {
    let Some(ca) = &opt.tls_ca else {
        return Ok(None);
    };
    let identity = opt.tls_cert.as_deref().zip(opt.tls_key.as_deref());
    let mut tls = TlsOptions::from_files(ca, identity)?;
    tls.server_name = opt.tls_server_name.clone();
    Ok(Some(tls))
}

/// What calls carry: `--token`, the token in `--token-file`, or bare names.
fn credentials(opt: &Opt) -> Result<Credentials, String> {
    if let Some(token) = &opt.token {
        return Ok(Credentials::Token(token.trim().to_owned()));
    }
    let Some(path) = &opt.token_file else {
        return Ok(Credentials::Names);
    };
    let token = std::fs::read_to_string(path)
        .map_err(|error| format!("--token-file: cannot read {}: {error}", path.display()))?;
    Ok(Credentials::Token(token.trim().to_owned()))
}

/// Connects as the flags say.
fn connect(opt: &Opt) -> Result<Api, String> {
    let credentials = credentials(opt)?;
    if matches!(opt.command, Command::Demo) && !matches!(credentials, Credentials::Names) {
        return Err(
            "the demo speaks for several users; --token and --token-file are for `chat`".into(),
        );
    }
    let tls = tls_options(opt)?;
    let server = opt.server.as_deref().unwrap_or(DEFAULT_SERVER);
    Ok(Api::connect_with(server, CONNECT_TIMEOUT, tls.as_ref())?.with_credentials(credentials))
}

/// `admin`: reads the secret, connects to `--server` as the TLS flags say,
/// makes the call and prints its lines.
fn run_admin(opt: &Opt, action: &admin::Action) -> Result<(), String> {
    if opt.token.is_some() {
        return Err("admin reads the operator's secret from --token-file, not --token".into());
    }
    let Some(path) = &opt.token_file else {
        return Err(
            "admin needs --token-file PATH, the file holding the server's admin secret".into(),
        );
    };
    let Some(server) = &opt.server else {
        return Err("admin needs --server HOST:PORT, the server's --admin-listen address".into());
    };
    let secret = Secret::from_file(path)?;
    let tls = tls_options(opt)?;
    let api = Api::connect_with(server, CONNECT_TIMEOUT, tls.as_ref())?;
    Admin::new(&api, secret).run(action, &mut std::io::stdout().lock())
}

/// The commands, keys and name rule, for `chat --help`.
fn chat_help() -> &'static str {
    static HELP: OnceLock<String> = OnceLock::new();
    HELP.get_or_init(|| {
        let mut help =
            String::from("COMMANDS (any case; any other line goes to the current conversation):\n");
        for (form, meaning) in COMMANDS {
            help.push_str(&format!("    {form:<16} {meaning}\n"));
        }
        help.push_str("\nKEYS (full screen):\n");
        for (keys, meaning) in KEYS {
            help.push_str(&format!("    {keys:<26} {meaning}\n"));
        }
        help.push_str("\nNAMES:\n    ");
        help.push_str(NAME_RULE);
        help
    })
}

fn main() -> ExitCode {
    let opt = Opt::from_args();
    let outcome = match &opt.command {
        Command::Demo => connect(&opt).and_then(|api| match demo::run(api) {
            0 => Ok(()),
            // The demo has logged each outcome that differed.
            _ => Err(String::new()),
        }),
        Command::Chat { user } => {
            connect(&opt).and_then(|api| chat::run(api, user, Mode::detect()))
        }
        Command::Admin { action } => run_admin(&opt, action),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("chat-client: {error}");
            }
            ExitCode::FAILURE
        }
    }
}
