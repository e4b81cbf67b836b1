//! `chat-client`: a command-line client for the chat service. `demo` runs a
//! scripted session that checks every outcome; `chat` is an interactive chat
//! for a person.

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use structopt::StructOpt;

use chat_client::api::Api;
use chat_client::chat::command::{COMMANDS, KEYS, NAME_RULE};
use chat_client::chat::Mode;
use chat_client::{chat, demo};

#[derive(Debug, StructOpt)]
#[structopt(
    name = "chat-client",
    about = "Command-line client for the chat service"
)]
struct Opt {
    /// The server's address, as host:port
    #[structopt(long, global = true, default_value = "127.0.0.1:13111")]
    server: String,

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
    let api = match Api::connect(&opt.server, Duration::from_secs(5)) {
        Ok(api) => api,
        Err(error) => {
            eprintln!("chat-client: {error}");
            return ExitCode::FAILURE;
        }
    };
    match opt.command {
        Command::Demo => {
            if demo::run(api) == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Chat { user } => match chat::run(api, &user, Mode::detect()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                if !error.is_empty() {
                    eprintln!("chat-client: {error}");
                }
                ExitCode::FAILURE
            }
        },
    }
}
