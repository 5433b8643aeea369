//! One configuration line split into its keyword and arguments, as ssh_config(5) and `-o`
//! read them.
//!
//! The keyword ends at white space or at an `=`, which may have white space around it.
//! Arguments are separated by spaces or tabs; double or single quotes group text that
//! holds spaces, and may start or end in the middle of an argument; a backslash escapes a
//! quote, a backslash, or (outside quotes) a space. A `#` at the start of an argument
//! begins a comment that runs to the end of the line, while a `#` inside an argument is
//! kept: `Port 22 # ssh` is port 22, `Port 22#x` a bad port, as with ssh.

/// A line with a keyword.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// Lower-cased, since keywords are case-insensitive.
    pub keyword: String,
    /// At least one.
    pub args: Vec<String>,
}

/// Why a line could not be split.
#[derive(Debug, PartialEq, Eq)]
pub enum LineError {
    NoArgument(String),
    InvalidQuotes,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoArgument(k) => write!(f, "no argument after keyword \"{k}\""),
            Self::InvalidQuotes => f.write_str("invalid quotes"),
        }
    }
}

/// Splits one line. Blank lines and comments give `Ok(None)`.
pub fn split_line(line: &str) -> Result<Option<Line>, LineError> {
    let line = line
        .trim_end_matches([' ', '\t', '\r', '\n', '\x0c'])
        .trim_start_matches([' ', '\t', '\r', '\n']);
    let end = line
        .find([' ', '\t', '\r', '\n', '='])
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    if keyword.is_empty() || keyword.starts_with('#') {
        return Ok(None);
    }
    let keyword = keyword.to_ascii_lowercase();

    // One `=` may separate the keyword from its value, with white space either side.
    let rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    let rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    if rest.is_empty() {
        return Err(LineError::NoArgument(keyword));
    }

    let args = split_args(rest)?;
    if args.is_empty() {
        return Err(LineError::NoArgument(keyword));
    }
    Ok(Some(Line { keyword, args }))
}

/// Splits arguments with quotes, escapes and comments, as described in the module docs.
fn split_args(text: &str) -> Result<Vec<String>, LineError> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(args),
            Some(_) => {}
        }

        let mut arg = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => match chars.peek() {
                    Some(&next @ ('\'' | '"' | '\\')) => {
                        arg.push(next);
                        chars.next();
                    }
                    Some(' ') if quote.is_none() => {
                        arg.push(' ');
                        chars.next();
                    }
                    _ => arg.push('\\'),
                },
                (' ' | '\t', None) => break,
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => arg.push(c),
            }
        }
        if quote.is_some() {
            return Err(LineError::InvalidQuotes);
        }
        args.push(arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyword and its arguments, or `None` for a line without one.
    type Split = Option<(String, Vec<String>)>;

    fn split(line: &str) -> Split {
        split_line(line).unwrap().map(|l| (l.keyword, l.args))
    }

    fn owned(keyword: &str, args: &[&str]) -> Split {
        Some((keyword.into(), args.iter().map(|&a| a.into()).collect()))
    }

    #[test]
    fn forms_ssh_accepts() {
        let cases: &[(&str, Split)] = &[
            ("", None),
            ("   \t ", None),
            ("# a comment", None),
            ("   #indented comment", None),
            ("Port 22", owned("port", &["22"])),
            ("PORT\t22", owned("port", &["22"])),
            ("Port=22", owned("port", &["22"])),
            ("Port = 22", owned("port", &["22"])),
            ("  Port =\t22  ", owned("port", &["22"])),
            ("Port 22\r", owned("port", &["22"])),
            ("Port 22 # trailing comment", owned("port", &["22"])),
            ("Port 22#x", owned("port", &["22#x"])),
            ("Host a b\tc", owned("host", &["a", "b", "c"])),
            (
                "IdentityFile \"/tmp/a b\"",
                owned("identityfile", &["/tmp/a b"]),
            ),
            (
                "IdentityFile '/tmp/a b'",
                owned("identityfile", &["/tmp/a b"]),
            ),
            (
                "IdentityFile /tmp/a\\ b",
                owned("identityfile", &["/tmp/a b"]),
            ),
            ("User a\"b c\"d", owned("user", &["ab cd"])),
            ("User \"say \\\"hi\\\"\"", owned("user", &["say \"hi\""])),
            ("User 'it\"s'", owned("user", &["it\"s"])),
            ("User a\\x", owned("user", &["a\\x"])),
            ("User \"\"", owned("user", &[""])),
            ("User \"#notcomment\"", owned("user", &["#notcomment"])),
        ];
        for (line, want) in cases {
            assert_eq!(&split(line), want, "{line:?}");
        }
    }

    #[test]
    fn forms_ssh_refuses() {
        assert_eq!(
            split_line("Port"),
            Err(LineError::NoArgument("port".into()))
        );
        assert_eq!(
            split_line("Port = "),
            Err(LineError::NoArgument("port".into()))
        );
        assert_eq!(
            split_line("Port # nothing"),
            Err(LineError::NoArgument("port".into()))
        );
        assert_eq!(split_line("User \"open"), Err(LineError::InvalidQuotes));
        assert_eq!(split_line("User 'a\"b"), Err(LineError::InvalidQuotes));
        assert_eq!(
            LineError::NoArgument("port".into()).to_string(),
            "no argument after keyword \"port\""
        );
    }
}
