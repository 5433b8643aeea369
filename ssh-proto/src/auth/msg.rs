//! The messages of the authentication protocol (RFC 4252, RFC 4256), parsed into typed
//! values that borrow the packet, and written straight into the transport's buffer.

use crate::msg::MessageNumber;
use crate::wire::{NameList, Reader, WireError, Writer};

/// The service this layer runs as (RFC 4252 section 1).
pub const SERVICE_USERAUTH: &str = "ssh-userauth";
/// The service it hands over to (RFC 4254 section 1).
pub const SERVICE_CONNECTION: &str = "ssh-connection";

/// Method-specific message 60: PK_OK for `publickey` (RFC 4252 section 7),
/// PASSWD_CHANGEREQ for `password` (section 8), INFO_REQUEST for `keyboard-interactive`
/// (RFC 4256 section 3.2).
pub const USERAUTH_60: MessageNumber = MessageNumber(0x3c);
/// INFO_RESPONSE (RFC 4256 section 3.4).
pub const USERAUTH_INFO_RESPONSE: MessageNumber = MessageNumber(0x3d);

/// The most prompts or responses one keyboard-interactive round may carry. RFC 4256 sets
/// no limit; OpenSSH allows 100.
pub const MAX_PROMPTS: u32 = 100;

/// An authentication method, as named on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    None,
    PublicKey,
    Password,
    KeyboardInteractive,
}

impl Method {
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::PublicKey => "publickey",
            Self::Password => "password",
            Self::KeyboardInteractive => "keyboard-interactive",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            b"none" => Some(Self::None),
            b"publickey" => Some(Self::PublicKey),
            b"password" => Some(Self::Password),
            b"keyboard-interactive" => Some(Self::KeyboardInteractive),
            _ => None,
        }
    }
}

/// The method-specific part of a USERAUTH_REQUEST.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestBody<'a> {
    None,
    /// RFC 4252 section 7. Without a signature it is a query: "would you accept this key?"
    PublicKey {
        alg: &'a [u8],
        key_blob: &'a [u8],
        signature: Option<&'a [u8]>,
    },
    /// RFC 4252 section 8. `new_password` is set when the client answers a change request.
    Password {
        password: &'a [u8],
        new_password: Option<&'a [u8]>,
    },
    /// RFC 4256 section 3.1.
    KeyboardInteractive {
        submethods: &'a [u8],
    },
    /// A method this crate does not implement; it fails like any refused method.
    Other {
        name: &'a [u8],
    },
}

/// SSH_MSG_USERAUTH_REQUEST (RFC 4252 section 5).
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub user: &'a [u8],
    pub service: &'a [u8],
    pub method: &'a [u8],
    pub body: RequestBody<'a>,
}

impl<'a> Request<'a> {
    /// Parses a whole payload, message number included.
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let user = r.string("user name")?;
        let service = r.string("service name")?;
        let method = r.string("method name")?;
        let body = match Method::from_name(method) {
            Some(Method::None) => RequestBody::None,
            Some(Method::PublicKey) => {
                let signed = r.bool("has signature")?;
                let alg = r.string("public key algorithm")?;
                let key_blob = r.string("public key blob")?;
                let signature = if signed {
                    Some(r.string("signature")?)
                } else {
                    None
                };
                RequestBody::PublicKey {
                    alg,
                    key_blob,
                    signature,
                }
            }
            Some(Method::Password) => {
                let change = r.bool("password change flag")?;
                let password = r.string("password")?;
                let new_password = if change {
                    Some(r.string("new password")?)
                } else {
                    None
                };
                RequestBody::Password {
                    password,
                    new_password,
                }
            }
            Some(Method::KeyboardInteractive) => {
                r.string("language tag")?;
                RequestBody::KeyboardInteractive {
                    submethods: r.string("submethods")?,
                }
            }
            None => {
                // Unknown methods carry fields we cannot parse; they are not checked.
                return Ok(Self {
                    user,
                    service,
                    method,
                    body: RequestBody::Other { name: method },
                });
            }
        };
        r.finish()?;
        Ok(Self {
            user,
            service,
            method,
            body,
        })
    }
}

/// RFC 4252 section 7: the data a client signs for `publickey`.
pub fn publickey_signed_data(
    session_id: &[u8],
    user: &[u8],
    service: &[u8],
    alg: &[u8],
    key_blob: &[u8],
) -> Vec<u8> {
    let mut d = Vec::with_capacity(session_id.len() + user.len() + key_blob.len() + 96);
    d.put_string(session_id);
    d.put_u8(MessageNumber::USERAUTH_REQUEST.0);
    d.put_string(user);
    d.put_string(service);
    d.put_string(Method::PublicKey.name().as_bytes());
    d.put_bool(true);
    d.put_string(alg);
    d.put_string(key_blob);
    d
}

/// Writes the start of a USERAUTH_REQUEST; the caller appends the method's fields.
pub fn put_request_head(p: &mut Vec<u8>, user: &[u8], service: &[u8], method: Method) {
    p.put_u8(MessageNumber::USERAUTH_REQUEST.0);
    p.put_string(user);
    p.put_string(service);
    p.put_string(method.name().as_bytes());
}

/// SSH_MSG_USERAUTH_FAILURE (RFC 4252 section 5.1).
#[derive(Debug, PartialEq, Eq)]
pub struct Failure<'a> {
    pub can_continue: NameList<'a>,
    pub partial_success: bool,
}

impl<'a> Failure<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let can_continue = r.name_list("authentications that can continue")?;
        let partial_success = r.bool("partial success")?;
        r.finish()?;
        Ok(Self {
            can_continue,
            partial_success,
        })
    }
}

pub fn put_failure<'n>(p: &mut Vec<u8>, methods: impl IntoIterator<Item = &'n str>, partial: bool) {
    p.put_u8(MessageNumber::USERAUTH_FAILURE.0);
    p.put_name_list(methods);
    p.put_bool(partial);
}

/// SSH_MSG_USERAUTH_BANNER (RFC 4252 section 5.4).
pub fn parse_banner(payload: &[u8]) -> Result<&[u8], WireError> {
    let mut r = Reader::new(payload);
    r.u8("message number")?;
    let text = r.string("banner message")?;
    r.string("language tag")?;
    r.finish()?;
    Ok(text)
}

/// A keyboard-interactive prompt (RFC 4256 section 3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub echo: bool,
}

/// SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 section 3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoRequest {
    pub name: String,
    pub instruction: String,
    pub prompts: Vec<Prompt>,
}

impl InfoRequest {
    /// Parses the request. The prompt count is checked against [`MAX_PROMPTS`] before
    /// anything is allocated for it.
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let name = String::from_utf8_lossy(r.string("name")?).into_owned();
        let instruction = String::from_utf8_lossy(r.string("instruction")?).into_owned();
        r.string("language tag")?;
        let count = r.u32("number of prompts")?;
        if count > MAX_PROMPTS {
            return Err(WireError {
                what: "number of prompts",
            });
        }
        let mut prompts = Vec::new();
        for _ in 0..count {
            let text = String::from_utf8_lossy(r.string("prompt")?).into_owned();
            let echo = r.bool("echo")?;
            prompts.push(Prompt { text, echo });
        }
        r.finish()?;
        Ok(Self {
            name,
            instruction,
            prompts,
        })
    }

    pub fn write(&self, p: &mut Vec<u8>) {
        p.put_u8(USERAUTH_60.0);
        p.put_string(self.name.as_bytes());
        p.put_string(self.instruction.as_bytes());
        p.put_string(b"");
        p.put_u32(u32::try_from(self.prompts.len()).unwrap_or(u32::MAX));
        for prompt in &self.prompts {
            p.put_string(prompt.text.as_bytes());
            p.put_bool(prompt.echo);
        }
    }
}

/// SSH_MSG_USERAUTH_INFO_RESPONSE (RFC 4256 section 3.4): the answers, borrowed from the
/// packet. The count is checked before anything is allocated for it.
pub fn parse_info_response(payload: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    let mut r = Reader::new(payload);
    r.u8("message number")?;
    let count = r.u32("number of responses")?;
    if count > MAX_PROMPTS {
        return Err(WireError {
            what: "number of responses",
        });
    }
    let mut responses = Vec::new();
    for _ in 0..count {
        responses.push(r.string("response")?);
    }
    r.finish()?;
    Ok(responses)
}

/// Text from the peer made safe to show: control characters other than newline and tab
/// become `?`, so a banner or prompt cannot move the cursor or rewrite the terminal.
pub fn sanitize(text: &[u8], max_chars: usize) -> String {
    String::from_utf8_lossy(text)
        .chars()
        .take(max_chars)
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publickey_request_round_trip() {
        let mut p = Vec::new();
        put_request_head(
            &mut p,
            b"alice",
            SERVICE_CONNECTION.as_bytes(),
            Method::PublicKey,
        );
        p.put_bool(true);
        p.put_string(b"ssh-ed25519");
        p.put_string(b"blob");
        p.put_string(b"sig");
        let req = Request::parse(&p).unwrap();
        assert_eq!(req.user, b"alice");
        assert_eq!(
            req.body,
            RequestBody::PublicKey {
                alg: b"ssh-ed25519",
                key_blob: b"blob",
                signature: Some(b"sig")
            }
        );
        p.push(0);
        assert!(Request::parse(&p).is_err(), "trailing bytes");
    }

    #[test]
    fn counts_are_checked_before_allocating() {
        let mut p = vec![USERAUTH_INFO_RESPONSE.0];
        p.put_u32(u32::MAX);
        assert!(parse_info_response(&p).is_err());
        let mut p = vec![USERAUTH_60.0];
        for _ in 0..3 {
            p.put_string(b"");
        }
        p.put_u32(5);
        assert!(
            InfoRequest::parse(&p).is_err(),
            "five prompts promised, none present"
        );
    }

    #[test]
    fn sanitize_removes_terminal_controls() {
        assert_eq!(sanitize(b"hi\x1b[2Jthere\n", 100), "hi?[2Jthere\n");
        assert_eq!(sanitize(b"abcdef", 3), "abc");
    }
}
