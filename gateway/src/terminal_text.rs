//! Text a server chose, made safe to print on the user's terminal.
//!
//! Banners, keyboard-interactive prompts, DISCONNECT and CHANNEL_OPEN_FAILURE
//! descriptions come from the server. Printed as they are, their escape sequences would
//! reach the user's terminal, which can move the cursor, rewrite what is on screen, set
//! the window title or, on some terminals, answer back as if typed. So every control
//! character is shown as an escape instead, as OpenSSH does with its `strnvis`: a C0
//! control or DEL as `\ooo` in octal, a C1 control as `\u{..}`. Tabs stay, and line ends
//! stay where the text may have several lines.

/// `text` with its control characters escaped; `\n` kept when `lines` is true, and a
/// `\r\n` then taken as a plain line end.
pub fn safe(text: &str, lines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(c),
            '\n' if lines => out.push(c),
            '\r' if lines && chars.peek() == Some(&'\n') => {}
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\{:03o}", u32::from(c)));
            }
            c if ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn escapes_cannot_reach_the_terminal() {
        assert_eq!(safe("plain text", false), "plain text");
        assert_eq!(safe("\x1b]0;owned\x07", false), "\\033]0;owned\\007");
        assert_eq!(safe("a\nb", false), "a\\012b");
        assert_eq!(safe("a\r\nb\n", true), "a\nb\n");
        assert_eq!(safe("a\rb", true), "a\\015b");
        assert_eq!(safe("tab\there", false), "tab\there");
        assert_eq!(safe("\u{9b}2J", false), "\\u{9b}2J");
        assert_eq!(safe("\u{7f}", true), "\\177");
        assert_eq!(safe("héllo ✓", false), "héllo ✓");
    }
}
