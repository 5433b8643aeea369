//! The client configuration files of ssh_config(5): `~/.ssh/config`, the system-wide
//! `/etc/ssh/ssh_config`, or the one file named by `-F`.
//!
//! A file is read once, whole, and every value is parsed then, so a mistake anywhere is
//! reported as `FILE line N: ...` before anything connects, as ssh does. Resolving the
//! file for one destination walks it top to bottom: a `Host` or `Match` line starts a
//! block that applies or not, and within the blocks that apply, the first value obtained
//! for each keyword wins (IdentityFile and LocalForward add up instead). The command line's
//! `-o` options are applied before the files, so they win too.
//!
//! ```
//! use gateway::ssh_config::{Setting, SshConfig};
//!
//! let text = "Host bastion\n  HostName 192.0.2.7\n  Port 2222\nHost *\n  Port 22\n";
//! let config = SshConfig::parse_str(text, "config".as_ref(), "/nonexistent".as_ref())?;
//! let resolved = config.resolve("bastion");
//! assert_eq!(resolved.get("port"), Some(&Setting::Port(2222)));
//! # Ok::<(), gateway::ssh_config::ConfigError>(())
//! ```
//!
//! Unknown keywords are skipped with a debug line rather than refused, so files written
//! for OpenSSH's full keyword set load here. Unlike ssh, the files' owner and permissions
//! are not checked.

mod line;
mod setting;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ssh_proto::pattern::glob;

pub use line::{Line, LineError, split_line};
pub use setting::{
    BadValue, IDENTITY_TOKENS, LogLevel, Parsed, RekeyLimit, RekeyTime, RequestTty, Setting,
    expand_percent, parse_time,
};

/// Includes nest at most this deep, as in ssh, so a file that includes itself fails.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Where a setting came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A `-o` option, which ssh reports as `command-line line 0`.
    CommandLine,
    File {
        path: Arc<Path>,
        line: usize,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CommandLine => f.write_str("command-line line 0"),
            Self::File { path, line } => write!(f, "{} line {line}", path.display()),
        }
    }
}

/// A configuration that cannot be used. Each displays as one line, in ssh's words.
#[derive(Debug)]
pub enum ConfigError {
    /// A line that is wrong, with ssh's reason.
    Line { origin: Origin, message: String },
    /// The file given with `-F` could not be read.
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line { origin, message } => write!(f, "{origin}: {message}"),
            Self::Open { path, error } => {
                write!(f, "Can't open user config file {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Which files to read, from ssh(1)'s `-F`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// No `-F`: `~/.ssh/config`, then `/etc/ssh/ssh_config`; either may be missing.
    Default,
    /// `-F FILE`: only this file, which must exist.
    File(PathBuf),
    /// `-F none`: no file at all.
    None,
}

impl ConfigSource {
    /// What `-F` gave, or `None` when it was not given.
    pub fn from_flag(flag: Option<&Path>) -> Self {
        match flag {
            None => Self::Default,
            Some(p) if p == Path::new("none") => Self::None,
            Some(p) => Self::File(match p.to_str() {
                Some(text) => crate::hostkeys::expand_tilde(text),
                None => p.to_owned(),
            }),
        }
    }
}

/// A pattern of a `Host` line, or of a comma-separated `Match` list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    negated: bool,
    glob: String,
}

impl Pattern {
    fn new(text: &str) -> Self {
        match text.strip_prefix('!') {
            Some(rest) => Self {
                negated: true,
                glob: rest.to_owned(),
            },
            None => Self {
                negated: false,
                glob: text.to_owned(),
            },
        }
    }
}

/// Whether `name` matches a pattern list: some positive pattern matches and no negated
/// one does. A list of only negated patterns therefore never matches, as in ssh.
fn list_matches(patterns: &[Pattern], name: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if glob(p.glob.as_bytes(), name.as_bytes()) {
            if p.negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// What a `Match` criterion tests.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    /// `host`: the host name after any HostName obtained so far.
    Host,
    /// `originalhost`: the name given on the command line.
    OriginalHost,
    /// `user`: the remote user obtained so far, or the local user.
    User,
    LocalUser,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Criterion {
    /// `all`.
    All,
    /// A pattern-list test, `!`-negated or not.
    Test {
        subject: Subject,
        negated: bool,
        patterns: Vec<Pattern>,
    },
    /// A criterion ssh knows that this client does not evaluate (`exec`, `canonical`,
    /// `final`, `localnetwork`, `tagged`, ...): the block never applies.
    Unsupported(String),
}

/// What decides whether a block applies.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Condition {
    /// The lines before the first `Host` or `Match`.
    Always,
    Host(Vec<Pattern>),
    Match(Vec<Criterion>),
}

#[derive(Clone, Debug)]
enum Item {
    Setting(Setting, Origin),
    /// The files an `Include` line named, each parsed when this file was.
    Include(Vec<ConfigFile>),
}

#[derive(Clone, Debug)]
struct Block {
    condition: Condition,
    origin: Origin,
    items: Vec<Item>,
}

#[derive(Clone, Debug)]
struct ConfigFile {
    blocks: Vec<Block>,
}

/// Parsed configuration files, ready to be resolved for a destination.
#[derive(Clone, Debug, Default)]
pub struct SshConfig {
    files: Vec<ConfigFile>,
}

/// One setting that applies to the destination, and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub setting: Setting,
    pub origin: Origin,
}

/// The settings that apply to one destination, in file order, first value per keyword
/// only (all of them for IdentityFile and LocalForward).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub settings: Vec<Applied>,
}

impl Resolved {
    /// The value of a keyword (lower-cased), or the first one for those that add up.
    pub fn get(&self, keyword: &str) -> Option<&Setting> {
        self.settings
            .iter()
            .map(|a| &a.setting)
            .find(|s| s.keyword() == keyword)
    }

    /// Every value of a keyword, for IdentityFile and LocalForward.
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Setting> + 'a {
        self.settings
            .iter()
            .map(|a| &a.setting)
            .filter(move |s| s.keyword() == keyword)
    }
}

/// The destination a configuration is resolved for.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// The host name as given on the command line.
    pub host: &'a str,
    /// The remote user given on the command line (`-l` or `user@`), if any.
    pub user: Option<&'a str>,
    /// The local user's name, for `Match localuser` and as the default remote user.
    pub local_user: &'a str,
}

/// Everything a file's parser needs besides the text.
struct Reader<'a> {
    /// Where relative Include paths start: `~/.ssh` or `/etc/ssh`.
    include_base: &'a Path,
    depth: usize,
}

impl SshConfig {
    /// Reads the files `source` names. Missing default files are no error; a missing
    /// `-F` file is.
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        let home = crate::hostkeys::home_dir();
        let user_base = home.join(".ssh");
        let files = match source {
            ConfigSource::None => Vec::new(),
            ConfigSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Open {
                    path: path.clone(),
                    error,
                })?;
                vec![parse_file(&text, path, &Reader::top(&user_base))?]
            }
            ConfigSource::Default => {
                let system_base = Path::new("/etc/ssh");
                let mut files = Vec::new();
                for (path, base) in [
                    (user_base.join("config"), user_base.as_path()),
                    (system_base.join("ssh_config"), system_base),
                ] {
                    if let Some(file) = read_optional(&path, &Reader::top(base))? {
                        files.push(file);
                    }
                }
                files
            }
        };
        Ok(Self { files })
    }

    /// Parses one file's text; `path` names it in errors and relative Include paths start
    /// at `include_base`.
    pub fn parse_str(text: &str, path: &Path, include_base: &Path) -> Result<Self, ConfigError> {
        let file = parse_file(text, path, &Reader::top(include_base))?;
        Ok(Self { files: vec![file] })
    }

    /// The settings for `host` as given on the command line, with no user given there.
    pub fn resolve(&self, host: &str) -> Resolved {
        let local_user = local_user();
        self.resolve_for(&Query {
            host,
            user: None,
            local_user: &local_user,
        })
    }

    /// The settings for a destination.
    pub fn resolve_for(&self, query: &Query<'_>) -> Resolved {
        let mut walk = Walk {
            query,
            hostname: None,
            user: query.user.map(str::to_owned),
            seen: HashSet::new(),
            out: Vec::new(),
        };
        for file in &self.files {
            walk.file(file, true);
        }
        Resolved { settings: walk.out }
    }
}

/// The local user's name as ssh's `%u` and `Match localuser` see it.
pub fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_owned())
}

impl Reader<'_> {
    fn top(include_base: &Path) -> Reader<'_> {
        Reader {
            include_base,
            depth: 0,
        }
    }
}

fn read_optional(path: &Path, reader: &Reader<'_>) -> Result<Option<ConfigFile>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_file(&text, path, reader).map(Some),
        Err(e) => {
            log::debug!("config file {}: {e}; skipped", path.display());
            Ok(None)
        }
    }
}

fn parse_file(text: &str, path: &Path, reader: &Reader<'_>) -> Result<ConfigFile, ConfigError> {
    let path: Arc<Path> = Arc::from(path);
    let mut blocks = vec![Block {
        condition: Condition::Always,
        origin: Origin::File {
            path: path.clone(),
            line: 0,
        },
        items: Vec::new(),
    }];
    let mut ignore_unknown: Option<Vec<Pattern>> = None;

    for (index, text) in text.lines().enumerate() {
        let origin = Origin::File {
            path: path.clone(),
            line: index + 1,
        };
        let fail = |message: String| ConfigError::Line {
            origin: origin.clone(),
            message,
        };
        let Some(Line { keyword, args }) = split_line(text).map_err(|e| fail(e.to_string()))?
        else {
            continue;
        };

        let item = match keyword.as_str() {
            "host" => {
                let patterns = args.iter().map(|a| Pattern::new(a)).collect();
                blocks.push(Block {
                    condition: Condition::Host(patterns),
                    origin,
                    items: Vec::new(),
                });
                continue;
            }
            "match" => {
                let criteria = parse_match(&args).map_err(fail)?;
                blocks.push(Block {
                    condition: Condition::Match(criteria),
                    origin,
                    items: Vec::new(),
                });
                continue;
            }
            "include" => Item::Include(include(&args, &origin, reader)?),
            "ignoreunknown" => {
                let [patterns] = args.as_slice() else {
                    return Err(fail(
                        "keyword ignoreunknown extra arguments at end of line".into(),
                    ));
                };
                // The first value wins, as for every keyword; it only quietens the log here
                // because unknown keywords are never an error.
                ignore_unknown
                    .get_or_insert_with(|| patterns.split(',').map(Pattern::new).collect());
                continue;
            }
            _ => match Setting::parse(&keyword, &args).map_err(|e| fail(e.0))? {
                Parsed::Setting(setting) => Item::Setting(setting, origin),
                Parsed::Unknown => {
                    let ignored = ignore_unknown
                        .as_deref()
                        .is_some_and(|p| list_matches(p, &keyword));
                    if ignored {
                        log::trace!("{origin}: ignoring {keyword} (IgnoreUnknown)");
                    } else {
                        log::debug!("{origin}: unknown or unsupported option {keyword}; ignored");
                    }
                    continue;
                }
            },
        };
        if let Some(block) = blocks.last_mut() {
            block.items.push(item);
        }
    }
    Ok(ConfigFile { blocks })
}

/// Parses the criteria of a `Match` line.
fn parse_match(args: &[String]) -> Result<Vec<Criterion>, String> {
    let mut criteria = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (negated, name) = match arg.strip_prefix('!') {
            Some(name) => (true, name),
            None => (false, arg.as_str()),
        };
        let name = name.to_ascii_lowercase();
        let subject = match name.as_str() {
            "all" => {
                // `all` stands alone, or right after `canonical` or `final`.
                let after_pass = match criteria.as_slice() {
                    [] => true,
                    [Criterion::Unsupported(pass)] => pass == "canonical" || pass == "final",
                    _ => false,
                };
                if negated || !after_pass || args.len() > 0 {
                    return Err("'all' cannot be combined with other Match attributes".into());
                }
                criteria.push(Criterion::All);
                continue;
            }
            "canonical" | "final" => {
                criteria.push(Criterion::Unsupported(name));
                continue;
            }
            "host" => Subject::Host,
            "originalhost" => Subject::OriginalHost,
            "user" => Subject::User,
            "localuser" => Subject::LocalUser,
            "exec" | "localnetwork" | "tagged" | "command" | "version" | "sessiontype" => {
                args.next()
                    .ok_or_else(|| format!("Missing Match criteria for {name}"))?;
                criteria.push(Criterion::Unsupported(name));
                continue;
            }
            _ => return Err(format!("Unsupported Match attribute {name}")),
        };
        let list = args
            .next()
            .ok_or_else(|| format!("Missing Match criteria for {name}"))?;
        // ssh compares `Match host` patterns in lower case, as host names are.
        let list = match subject {
            Subject::Host | Subject::OriginalHost => list.to_ascii_lowercase(),
            Subject::User | Subject::LocalUser => list.clone(),
        };
        criteria.push(Criterion::Test {
            subject,
            negated,
            patterns: list.split(',').map(Pattern::new).collect(),
        });
    }
    Ok(criteria)
}

/// Reads the files an `Include` line names. A relative path starts at the including
/// file's base directory; `*` and `?` may appear in the last path component only, which
/// covers the common `Include config.d/*`. Names that match nothing are skipped, as ssh
/// skips them.
fn include(
    args: &[String],
    origin: &Origin,
    reader: &Reader<'_>,
) -> Result<Vec<ConfigFile>, ConfigError> {
    if reader.depth >= MAX_INCLUDE_DEPTH {
        return Err(ConfigError::Line {
            origin: origin.clone(),
            message: "Include nesting too deep".into(),
        });
    }
    let inner = Reader {
        include_base: reader.include_base,
        depth: reader.depth + 1,
    };
    let mut files = Vec::new();
    for arg in args {
        let path = crate::hostkeys::expand_tilde(arg);
        let path = reader.include_base.join(path);
        for found in expand_last_component(&path, origin)? {
            if let Some(file) = read_optional(&found, &inner)? {
                files.push(file);
            }
        }
    }
    Ok(files)
}

/// The paths a possibly wildcarded path names, sorted as a shell would list them.
fn expand_last_component(path: &Path, origin: &Origin) -> Result<Vec<PathBuf>, ConfigError> {
    let wild = |s: &str| s.contains(['*', '?']);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let parent = path.parent().unwrap_or(Path::new("/"));
    if wild(&parent.to_string_lossy()) {
        return Err(ConfigError::Line {
            origin: origin.clone(),
            message: format!(
                "Include {}: wildcards are supported in the last component only",
                path.display()
            ),
        });
    }
    match name {
        Some(name) if wild(&name) => {
            let Ok(entries) = std::fs::read_dir(parent) else {
                return Ok(Vec::new());
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let file = e.file_name();
                    let file = file.to_string_lossy();
                    // As with a shell glob, a leading dot is matched only explicitly.
                    (!file.starts_with('.') || name.starts_with('.'))
                        && glob(name.as_bytes(), file.as_bytes())
                })
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            Ok(found)
        }
        _ => Ok(vec![path.to_owned()]),
    }
}

/// The state of one resolution: what has been obtained so far decides later `Match`es.
struct Walk<'q> {
    query: &'q Query<'q>,
    /// The first HostName that applied, `%h` expanded.
    hostname: Option<String>,
    /// The command line's user, else the first User that applied.
    user: Option<String>,
    seen: HashSet<&'static str>,
    out: Vec<Applied>,
}

impl Walk<'_> {
    fn file(&mut self, file: &ConfigFile, active: bool) {
        for block in &file.blocks {
            let applies = active && self.applies(&block.condition, &block.origin);
            for item in &block.items {
                match item {
                    Item::Setting(setting, origin) if applies => self.take(setting, origin),
                    Item::Setting(..) => {}
                    // An included file's own Host and Match lines cannot make it apply
                    // when the block around the Include does not.
                    Item::Include(files) => {
                        for f in files {
                            self.file(f, applies);
                        }
                    }
                }
            }
        }
    }

    fn applies(&self, condition: &Condition, origin: &Origin) -> bool {
        match condition {
            Condition::Always => true,
            Condition::Host(patterns) => {
                let negated = patterns
                    .iter()
                    .find(|p| p.negated && glob(p.glob.as_bytes(), self.query.host.as_bytes()));
                if let Some(p) = negated {
                    log::debug!(
                        "{origin}: skipping Host block: negated match for !{}",
                        p.glob
                    );
                }
                list_matches(patterns, self.query.host)
            }
            Condition::Match(criteria) => criteria.iter().all(|c| self.meets(c, origin)),
        }
    }

    fn meets(&self, criterion: &Criterion, origin: &Origin) -> bool {
        let (subject, negated, patterns) = match criterion {
            Criterion::All => return true,
            Criterion::Unsupported(name) => {
                log::debug!("{origin}: Match {name} is not supported; the block does not apply");
                return false;
            }
            Criterion::Test {
                subject,
                negated,
                patterns,
            } => (subject, *negated, patterns),
        };
        let text = match subject {
            Subject::Host => self
                .hostname
                .as_deref()
                .unwrap_or(self.query.host)
                .to_ascii_lowercase(),
            Subject::OriginalHost => self.query.host.to_ascii_lowercase(),
            Subject::User => self
                .user
                .as_deref()
                .unwrap_or(self.query.local_user)
                .to_owned(),
            Subject::LocalUser => self.query.local_user.to_owned(),
        };
        list_matches(patterns, &text) != negated
    }

    fn take(&mut self, setting: &Setting, origin: &Origin) {
        if !setting.accumulates() && !self.seen.insert(setting.keyword()) {
            return;
        }
        match setting {
            Setting::HostName(template) => {
                let host = self.query.host;
                let expanded = expand_percent(template, |c| (c == 'h').then_some(host));
                self.hostname = Some(expanded.unwrap_or_else(|_| template.clone()));
            }
            Setting::User(user) if self.user.is_none() => self.user = Some(user.clone()),
            _ => {}
        }
        self.out.push(Applied {
            setting: setting.clone(),
            origin: origin.clone(),
        });
    }
}

#[cfg(test)]
mod tests;
