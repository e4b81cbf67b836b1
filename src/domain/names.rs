//! Validation of user and group names. Usernames and group names share one
//! namespace and one rule: 1 to 64 characters of ASCII letters, digits, `_`,
//! `-` and `.`, compared case-sensitively. This module owns that rule and
//! nothing else.

use std::fmt;

/// The longest valid name, in characters (all of them ASCII, so also bytes).
pub const MAX_NAME_LEN: usize = 64;

/// Why a string is not a valid name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// The string is empty.
    Empty,
    /// The string is longer than [`MAX_NAME_LEN`].
    TooLong,
    /// The string holds a character outside `[A-Za-z0-9_.-]`.
    BadCharacter,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => write!(f, "is empty"),
            NameProblem::TooLong => write!(f, "is longer than {MAX_NAME_LEN} characters"),
            NameProblem::BadCharacter => {
                write!(f, "may only hold ASCII letters, digits, '_', '-' and '.'")
            }
        }
    }
}

/// Checks `name` against the naming rule.
///
/// # Errors
/// Returns the first problem found.
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameProblem::TooLong);
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if name.bytes().all(allowed) {
        Ok(())
    } else {
        Err(NameProblem::BadCharacter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet_up_to_64_characters() {
        assert_eq!(check_name("a"), Ok(()));
        assert_eq!(check_name("Alice_Bob-1.2"), Ok(()));
        assert_eq!(check_name(&"x".repeat(64)), Ok(()));
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert_eq!(check_name(""), Err(NameProblem::Empty));
        assert_eq!(check_name(&"x".repeat(65)), Err(NameProblem::TooLong));
        for bad in ["a b", "a/b", "é", "a\0", "a@b", " a", "a\n", "ä"] {
            assert_eq!(check_name(bad), Err(NameProblem::BadCharacter), "{bad:?}");
        }
    }
}
