//! The input line of the interactive chat: the text being typed, the cursor
//! in it, the editing keys (readline's usual ones) and the history of
//! submitted lines. Plain data, no terminal: the key mapping lives in
//! `tui`, the drawing in `view`.

/// Most submitted lines the history keeps.
const HISTORY_LIMIT: usize = 500;

/// The line being edited, with its cursor and history.
#[derive(Debug, Default, Clone)]
pub struct InputLine {
    /// The text, as characters, so the cursor moves by character.
    text: Vec<char>,
    /// Cursor position in `text`: 0 ..= `text.len()`.
    cursor: usize,
    /// Submitted lines, oldest first.
    history: Vec<String>,
    /// While browsing the history with Up/Down: the entry shown, and the
    /// line that was being typed before browsing began (restored by Down
    /// past the newest entry).
    browsing: Option<(usize, String)>,
}

impl InputLine {
    /// The text typed so far.
    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// The cursor's position, in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The text before the cursor (for placing the terminal cursor).
    pub fn before_cursor(&self) -> String {
        self.text[..self.cursor].iter().collect()
    }

    /// Inserts `c` at the cursor.
    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += 1;
    }

    /// Moves the cursor one character left.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Moves the cursor one character right.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.text.len());
    }

    /// Moves the cursor to the start (Home, Ctrl-A).
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// Moves the cursor to the end (End, Ctrl-E).
    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Deletes the character before the cursor (Backspace).
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.text.remove(self.cursor);
        }
    }

    /// Deletes the character under the cursor (Delete).
    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    /// Deletes from the start of the line to the cursor (Ctrl-U).
    pub fn kill_to_start(&mut self) {
        self.text.drain(..self.cursor);
        self.cursor = 0;
    }

    /// Deletes from the cursor to the end of the line (Ctrl-K).
    pub fn kill_to_end(&mut self) {
        self.text.truncate(self.cursor);
    }

    /// Deletes the word before the cursor and the spaces after it (Ctrl-W).
    pub fn kill_word(&mut self) {
        let mut start = self.cursor;
        while start > 0 && self.text[start - 1].is_whitespace() {
            start -= 1;
        }
        while start > 0 && !self.text[start - 1].is_whitespace() {
            start -= 1;
        }
        self.text.drain(start..self.cursor);
        self.cursor = start;
    }

    /// Takes the line (Enter): returns it, clears the input and, when it is
    /// not blank, remembers it in the history.
    pub fn submit(&mut self) -> String {
        let line = self.text();
        self.text.clear();
        self.cursor = 0;
        self.browsing = None;
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > HISTORY_LIMIT {
                self.history.remove(0);
            }
        }
        line
    }

    /// Shows the previous history entry (Up).
    pub fn history_back(&mut self) {
        let index = match &self.browsing {
            Some((index, _)) => index.saturating_sub(1),
            None if self.history.is_empty() => return,
            None => {
                self.browsing = Some((self.history.len(), self.text()));
                self.history.len() - 1
            }
        };
        self.show_history(index);
    }

    /// Shows the next history entry, or what was being typed before
    /// browsing began (Down).
    pub fn history_forward(&mut self) {
        let Some((index, _)) = &self.browsing else {
            return;
        };
        let next = index + 1;
        if next < self.history.len() {
            self.show_history(next);
        } else if let Some((_, typed)) = self.browsing.take() {
            self.set(&typed);
        }
    }

    fn show_history(&mut self, index: usize) {
        let Some(entry) = self.history.get(index).cloned() else {
            return;
        };
        if let Some((shown, _)) = &mut self.browsing {
            *shown = index;
        }
        self.set(&entry);
    }

    fn set(&mut self, text: &str) {
        self.text = text.chars().collect();
        self.cursor = self.text.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> InputLine {
        let mut input = InputLine::default();
        text.chars().for_each(|c| input.insert(c));
        input
    }

    #[test]
    fn typing_inserts_at_the_cursor() {
        let mut input = typed("helo");
        input.left();
        input.insert('l');
        assert_eq!(input.text(), "hello");
        assert_eq!(input.cursor(), 4);
        input.home();
        input.insert('>');
        input.end();
        input.insert('!');
        assert_eq!(input.text(), ">hello!");
    }

    #[test]
    fn backspace_and_delete_remove_around_the_cursor() {
        let mut input = typed("abcd");
        input.left();
        input.backspace();
        assert_eq!(input.text(), "abd");
        input.delete();
        assert_eq!(input.text(), "ab");
        input.delete();
        input.home();
        input.backspace();
        assert_eq!(input.text(), "ab");
    }

    #[test]
    fn ctrl_u_and_ctrl_k_kill_either_side_of_the_cursor() {
        let mut input = typed("hello world");
        for _ in 0..5 {
            input.left();
        }
        input.kill_to_start();
        assert_eq!((input.text().as_str(), input.cursor()), ("world", 0));
        input.right();
        input.kill_to_end();
        assert_eq!(input.text(), "w");
    }

    #[test]
    fn ctrl_w_kills_the_word_before_the_cursor() {
        let mut input = typed("say hello  ");
        input.kill_word();
        assert_eq!(input.text(), "say ");
        input.kill_word();
        assert_eq!(input.text(), "");
        input.kill_word();
        assert_eq!(input.text(), "");
    }

    #[test]
    fn cursor_moves_by_character_not_byte() {
        let mut input = typed("héllo");
        input.left();
        input.left();
        input.left();
        input.backspace();
        assert_eq!(input.text(), "hllo");
        assert_eq!(input.before_cursor(), "h");
    }

    #[test]
    fn history_goes_back_and_forward_and_restores_the_typed_line() {
        let mut input = InputLine::default();
        for line in ["first", "second"] {
            line.chars().for_each(|c| input.insert(c));
            input.submit();
        }
        "draft".chars().for_each(|c| input.insert(c));
        input.history_back();
        assert_eq!(input.text(), "second");
        input.history_back();
        assert_eq!(input.text(), "first");
        input.history_back();
        assert_eq!(input.text(), "first");
        input.history_forward();
        assert_eq!(input.text(), "second");
        input.history_forward();
        assert_eq!(input.text(), "draft");
        input.history_forward();
        assert_eq!(input.text(), "draft");
    }

    #[test]
    fn blank_and_repeated_lines_stay_out_of_the_history() {
        let mut input = InputLine::default();
        for line in ["again", "again", "   "] {
            line.chars().for_each(|c| input.insert(c));
            assert_eq!(input.submit(), line);
        }
        input.history_back();
        input.history_back();
        assert_eq!(input.text(), "again");
        input.history_forward();
        assert_eq!(input.text(), "");
    }
}
