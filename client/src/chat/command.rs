//! What a submitted line means: a `/command` (names matched without regard
//! to case) or a text for the current conversation. Parsing only; what a
//! command does is `app`'s business.

/// The commands, their arguments and what they do, for `/help` and
/// `chat-client chat --help`.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "/to NAME",
        "talk to user or group NAME (checked with the server)",
    ),
    ("/msg NAME TEXT", "send TEXT to NAME without switching"),
    ("/list", "list connected users and groups"),
    (
        "/members [GROUP]",
        "list the members of the current group (or of GROUP)",
    ),
    ("/create GROUP", "create a group and join it"),
    ("/join GROUP", "join a group"),
    ("/leave GROUP", "leave a group"),
    ("/help", "this list"),
    ("/quit", "disconnect and exit"),
];

/// The keys of the full-screen chat, for `/help` and `--help`.
pub const KEYS: &[(&str, &str)] = &[
    ("Enter", "send the line, or run the command"),
    ("Tab, Ctrl-N, Alt-Down", "next conversation"),
    ("Shift-Tab, Ctrl-P, Alt-Up", "previous conversation"),
    (
        "Left, Right, Home, End",
        "move in the line (also Ctrl-A, Ctrl-E)",
    ),
    ("Backspace, Delete", "delete before / under the cursor"),
    (
        "Ctrl-U, Ctrl-K, Ctrl-W",
        "delete to the start, to the end, the word before",
    ),
    ("Up, Down", "earlier and later lines you typed"),
    ("PageUp, PageDown", "scroll the messages"),
    ("Esc", "clear the status message"),
    ("Ctrl-C, Ctrl-D", "quit (Ctrl-D on an empty line)"),
];

/// The name rule, as the server applies it.
pub const NAME_RULE: &str = "Names (users and groups share one namespace): 1-64 ASCII letters, \
     digits, '_', '-' and '.'; case-sensitive. A group may be written #NAME.";

/// One submitted line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Plain text for the current conversation.
    Say(String),
    /// `/to NAME`.
    To(String),
    /// `/msg NAME TEXT`.
    Msg { to: String, text: String },
    /// `/list`.
    List,
    /// `/members [GROUP]`: the group named, or `None` for the current one.
    Members(Option<String>),
    /// `/create GROUP`.
    Create(String),
    /// `/join GROUP`.
    Join(String),
    /// `/leave GROUP`.
    Leave(String),
    /// `/help`.
    Help,
    /// `/quit` (also `/exit`).
    Quit,
    /// A blank line: nothing to do.
    Nothing,
    /// A command used wrongly or not known: the message to show.
    Invalid(String),
}

impl Command {
    /// Whether carrying it out takes a call to the server (so it must wait
    /// while the client is not connected).
    pub fn needs_server(&self) -> bool {
        !matches!(
            self,
            Command::Help | Command::Quit | Command::Nothing | Command::Invalid(_)
        )
    }
}

/// Parses one line. A line starting with `//` sends the rest with one `/`
/// (to say something that starts with a slash).
pub fn parse(line: &str) -> Command {
    if line.trim().is_empty() {
        return Command::Nothing;
    }
    if let Some(text) = line.strip_prefix("//") {
        return Command::Say(format!("/{text}"));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Command::Say(line.to_owned());
    };
    let command = command.trim_start();
    let (word, rest) = command
        .split_once(char::is_whitespace)
        .unwrap_or((command, ""));
    let rest = rest.trim();
    let name = || name_argument(rest);
    match word.to_ascii_lowercase().as_str() {
        "to" => name().map_or_else(|| usage("/to NAME"), Command::To),
        "msg" => match rest.split_once(char::is_whitespace) {
            Some((to, text)) if !text.trim().is_empty() => Command::Msg {
                to: to.trim_start_matches('#').to_owned(),
                text: text.trim_start().to_owned(),
            },
            _ => usage("/msg NAME TEXT"),
        },
        "list" => Command::List,
        "members" if rest.is_empty() => Command::Members(None),
        "members" => {
            name().map_or_else(|| usage("/members [GROUP]"), |g| Command::Members(Some(g)))
        }
        "create" => name().map_or_else(|| usage("/create GROUP"), Command::Create),
        "join" => name().map_or_else(|| usage("/join GROUP"), Command::Join),
        "leave" => name().map_or_else(|| usage("/leave GROUP"), Command::Leave),
        "help" | "?" => Command::Help,
        "quit" | "exit" => Command::Quit,
        _ => Command::Invalid(format!("unknown command /{word}; /help lists them")),
    }
}

/// One name, `#` prefix allowed; `None` when there is none or more than one.
fn name_argument(rest: &str) -> Option<String> {
    let name = rest.trim_start_matches('#');
    (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| name.to_owned())
}

fn usage(form: &str) -> Command {
    Command::Invalid(format!("usage: {form}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_matched_without_regard_to_case() {
        assert_eq!(parse("/TO bob"), Command::To("bob".into()));
        assert_eq!(parse("/Quit"), Command::Quit);
        assert_eq!(parse("/LIST"), Command::List);
        assert_eq!(parse("/Help"), Command::Help);
    }

    #[test]
    fn names_keep_their_case_and_lose_a_group_mark() {
        assert_eq!(parse("/to Bob"), Command::To("Bob".into()));
        assert_eq!(parse("/join #general"), Command::Join("general".into()));
        assert_eq!(
            parse("/Members #general"),
            Command::Members(Some("general".into()))
        );
        assert_eq!(parse("/members"), Command::Members(None));
        assert_eq!(parse("/members a b"), usage("/members [GROUP]"));
        assert_eq!(parse("/create  team.a "), Command::Create("team.a".into()));
    }

    #[test]
    fn msg_takes_a_name_and_the_rest_as_written() {
        assert_eq!(
            parse("/msg bob  two  spaces\tand tab"),
            Command::Msg {
                to: "bob".into(),
                text: "two  spaces\tand tab".into()
            }
        );
        assert_eq!(parse("/msg bob"), usage("/msg NAME TEXT"));
    }

    #[test]
    fn plain_lines_are_said_as_typed() {
        assert_eq!(parse("  hi  "), Command::Say("  hi  ".into()));
        assert_eq!(
            parse("//not a command"),
            Command::Say("/not a command".into())
        );
        assert_eq!(parse("   "), Command::Nothing);
    }

    #[test]
    fn only_calls_need_the_server() {
        assert!(parse("hi").needs_server());
        assert!(parse("/join g").needs_server());
        assert!(!parse("/help").needs_server());
        assert!(!parse("/quit").needs_server());
        assert!(!parse("/nope").needs_server());
        assert!(!parse("").needs_server());
    }

    #[test]
    fn missing_or_extra_arguments_and_unknown_commands_say_so() {
        assert_eq!(parse("/to"), usage("/to NAME"));
        assert_eq!(parse("/to a b"), usage("/to NAME"));
        assert_eq!(parse("/join"), usage("/join GROUP"));
        assert_eq!(
            parse("/frobnicate x"),
            Command::Invalid("unknown command /frobnicate; /help lists them".into())
        );
    }
}
