//! `chat-client`: a command-line client for the chat service. `demo` runs a
//! scripted session that checks every outcome; `chat` is an interactive chat
//! for a person.

use std::process::ExitCode;
use std::time::Duration;

use structopt::StructOpt;

use chat_client::api::Api;
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
    /// Chat interactively as a user
    Chat {
        /// The username to connect as
        #[structopt(long)]
        user: String,
    },
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
        Command::Chat { user } => match chat::run(api, &user) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("chat-client: {error}");
                ExitCode::FAILURE
            }
        },
    }
}
