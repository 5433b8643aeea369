//! The client side of RFC 4252 authentication, as a sans-IO state machine that runs
//! beside a [`Transport`].
//!
//! [`ClientAuth`] writes requests through the transport and reads the server's answers,
//! but it holds no private key and no secret. The application decides which method to try
//! next, signs with whatever holds the private key (a key file or ssh-agent, both the same
//! to this machine), and supplies passwords and keyboard-interactive answers, which go
//! straight into the transport's packet buffer and are kept nowhere here. The call order:
//!
//! 1. [`ClientAuth::new`] with the user name, then [`ClientAuth::start`], which sends
//!    SERVICE_REQUEST `ssh-userauth` (RFC 4253 section 10). The transport holds it until
//!    the first key exchange is done.
//! 2. When the transport reports [`crate::transport::Event::ExtInfo`], pass its
//!    `server-sig-algs` to [`ClientAuth::set_server_sig_algs`] (RFC 8308 section 3.1).
//! 3. Hand every packet [`Transport::decode`] returns to [`ClientAuth::handle`] until
//!    [`ClientAuthEvent::Success`], and after each call take [`ClientAuth::poll_event`]
//!    until it returns `None`.
//! 4. After [`ClientAuthEvent::ServiceAccepted`] and after every answer, send one request:
//!    [`ClientAuth::request_none`] to learn the methods, [`ClientAuth::query_publickey`]
//!    then (on [`ClientAuthEvent::KeyAccepted`]) [`ClientAuth::signed_data`] and
//!    [`ClientAuth::send_publickey_signature`], [`ClientAuth::request_password`], or
//!    [`ClientAuth::request_keyboard_interactive`] then
//!    [`ClientAuth::send_info_response`] for each [`ClientAuthEvent::InfoRequest`].
//!
//! One request is outstanding at a time (RFC 4252 section 5): a request made while the
//! server owes an answer fails with [`Error::Misuse`] and sends nothing. When the server
//! answers with a message that waits on the application (PK_OK, INFO_REQUEST,
//! PASSWD_CHANGEREQ), a new request abandons that method, as section 5 allows.
//!
//! A server that breaks the protocol (SUCCESS or FAILURE with no request outstanding, a
//! PK_OK for a key that was not asked about, messages only a client sends) ends the
//! connection: [`ClientAuth::handle`] queues a DISCONNECT with PROTOCOL_ERROR through the
//! transport and returns the error.

use std::collections::VecDeque;

use crate::auth::msg::{
    self, Failure, InfoRequest, Method, Prompt, SERVICE_CONNECTION, SERVICE_USERAUTH, USERAUTH_60,
    USERAUTH_INFO_RESPONSE,
};
use crate::error::Error;
use crate::hostkey::{PublicKey, SignatureAlg};
use crate::msg::{DisconnectReason, MessageNumber};
use crate::transport::Transport;
use crate::wire::{Reader, Writer};

/// The most characters of a banner passed to the application; the rest is cut. Legal
/// notices run to a few kilobytes; a banner the size of a packet is noise.
pub const MAX_BANNER_CHARS: usize = 16 * 1024;

/// The most characters of a keyboard-interactive name, instruction or prompt, or of a
/// password change prompt, passed to the application.
pub const MAX_PROMPT_CHARS: usize = 2048;

/// Something the application must know or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAuthEvent {
    /// The server accepted the `ssh-userauth` service: requests may start.
    ServiceAccepted,
    /// SSH_MSG_USERAUTH_BANNER (RFC 4252 section 5.4): text to show the user before
    /// authentication, with control characters other than newline and tab replaced.
    Banner(String),
    /// SSH_MSG_USERAUTH_FAILURE (RFC 4252 section 5.1) in answer to a request of `method`.
    /// With `partial_success` the request succeeded but the server wants more methods;
    /// without it the request failed. A failure in answer to a `publickey` query means the
    /// server will not take that key with that algorithm.
    Failure {
        method: Method,
        /// The methods that may continue, as the server named them (printable ASCII),
        /// including ones this crate does not implement.
        can_continue: Vec<String>,
        partial_success: bool,
    },
    /// SSH_MSG_USERAUTH_PK_OK (RFC 4252 section 7): the server would accept a signature by
    /// this key with this algorithm. Sign [`ClientAuth::signed_data`] and call
    /// [`ClientAuth::send_publickey_signature`].
    KeyAccepted { key: PublicKey, alg: SignatureAlg },
    /// SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 section 3.2), every text sanitized. Answer
    /// with [`ClientAuth::send_info_response`], one response per prompt; a request with no
    /// prompts is answered with none.
    InfoRequest(InfoRequest),
    /// SSH_MSG_USERAUTH_PASSWD_CHANGEREQ (RFC 4252 section 8): the password was right but
    /// has expired. Changing it is not implemented, so treat this as a failed password
    /// attempt: show the prompt and try another method, or give up.
    PasswordChangeRequested { prompt: String },
    /// SSH_MSG_USERAUTH_SUCCESS: authentication is complete and the transport knows it.
    /// Messages of the connection protocol (RFC 4254) may follow at once.
    Success,
}

/// A request the server has yet to answer.
#[derive(Debug)]
enum Outstanding {
    None,
    /// A `publickey` request without a signature.
    Query {
        key: PublicKey,
        alg: SignatureAlg,
    },
    /// A `publickey` request with a signature.
    Signed,
    Password,
    /// A `keyboard-interactive` request or an INFO_RESPONSE.
    KeyboardInteractive,
}

impl Outstanding {
    fn method(&self) -> Method {
        match self {
            Self::None => Method::None,
            Self::Query { .. } | Self::Signed => Method::PublicKey,
            Self::Password => Method::Password,
            Self::KeyboardInteractive => Method::KeyboardInteractive,
        }
    }
}

#[derive(Debug)]
enum State {
    /// [`ClientAuth::start`] has not been called.
    New,
    /// SERVICE_REQUEST is out; SERVICE_ACCEPT has not come.
    ServiceRequested,
    /// Nothing outstanding: the application may send a request.
    Idle,
    /// A request is out and the server owes the answer.
    Waiting(Outstanding),
    /// PK_OK came: the server waits for the signed request.
    Sign { key: PublicKey, alg: SignatureAlg },
    /// INFO_REQUEST came with this many prompts: the server waits for the responses.
    Prompts(usize),
    /// SUCCESS came.
    Done,
    /// The server broke the protocol and the connection is over.
    Failed,
}

/// The client's authentication state for one connection. See the module docs for the
/// call order.
#[derive(Debug)]
pub struct ClientAuth {
    user: String,
    state: State,
    events: VecDeque<ClientAuthEvent>,
    /// The server's `server-sig-algs`, if it sent any.
    server_sig_algs: Option<String>,
    /// The methods that can continue, from the last FAILURE.
    can_continue: Option<Vec<String>>,
    /// Methods that succeeded with a partial success, in order.
    partial: Vec<Method>,
    /// The server announced itself as OpenSSH 7.4, whose `server-sig-algs` leaves out the
    /// RSA SHA-2 algorithms it accepts.
    openssh_74: bool,
}

impl ClientAuth {
    /// Authentication for `user`, who asks for the `ssh-connection` service.
    pub fn new(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            state: State::New,
            events: VecDeque::new(),
            server_sig_algs: None,
            can_continue: None,
            partial: Vec::new(),
            openssh_74: false,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Sends SERVICE_REQUEST `ssh-userauth` (RFC 4253 section 10). Call once.
    pub fn start(&mut self, transport: &mut Transport) -> Result<(), Error> {
        if !matches!(self.state, State::New) {
            return Err(Error::Misuse("authentication has already started"));
        }
        transport.send(|p| {
            p.put_u8(MessageNumber::SERVICE_REQUEST.0);
            p.put_string(SERVICE_USERAUTH.as_bytes());
        })?;
        self.state = State::ServiceRequested;
        Ok(())
    }

    pub fn poll_event(&mut self) -> Option<ClientAuthEvent> {
        self.events.pop_front()
    }

    /// Whether the server sent SUCCESS.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The methods that can continue, as the last FAILURE named them; `None` before the
    /// first FAILURE.
    pub fn can_continue(&self) -> Option<&[String]> {
        self.can_continue.as_deref()
    }

    /// Whether the server still allows `method`. Before the first FAILURE nothing is
    /// known and every method counts as allowed; [`ClientAuth::request_none`] asks.
    pub fn allows(&self, method: Method) -> bool {
        self.can_continue
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == method.name()))
    }

    /// The methods that succeeded with a partial success (RFC 4252 section 5.1), in order:
    /// each was accepted, but the server wants more before SUCCESS.
    pub fn partial_successes(&self) -> &[Method] {
        &self.partial
    }

    /// Records the server's `server-sig-algs` extension (RFC 8308 section 3.1), from
    /// [`crate::transport::ExtInfo::server_sig_algs`].
    pub fn set_server_sig_algs(&mut self, list: &str) {
        self.server_sig_algs = Some(list.to_owned());
    }

    /// The signature algorithm to use with `key`, or `None` if the server accepts none
    /// that the key can make.
    ///
    /// Ed25519 and ECDSA keys have one algorithm each, used whatever `server-sig-algs`
    /// says, as OpenSSH does: the list is there to choose among RSA's algorithms, and a
    /// server that does not take a key type still answers a query for it, with FAILURE.
    ///
    /// An RSA key signs with `rsa-sha2-512` or `rsa-sha2-256` (RFC 8332), whichever the
    /// server lists, 512 first; never with the SHA-1 `ssh-rsa`. Without `server-sig-algs`
    /// there is nothing to go on. OpenSSH then falls back to `ssh-rsa`, which it has refused
    /// by default since 8.8, so it skips RSA keys; RFC 8332 section 3.3 lets a client
    /// default to a SHA-2 algorithm instead, and this picks `rsa-sha2-256`, the one that
    /// section 3 recommends every implementation support. A server that does not take it
    /// answers the query with FAILURE, and no signature is spent. One quirk is copied from
    /// OpenSSH: a server calling itself OpenSSH 7.4 accepts both SHA-2 algorithms but
    /// leaves them out of `server-sig-algs`, so for it both count as listed. That needs the
    /// server's version, which is read when SERVICE_ACCEPT arrives.
    pub fn choose_signature_alg(&self, key: &PublicKey) -> Option<SignatureAlg> {
        match key {
            PublicKey::Ed25519(_) => Some(SignatureAlg::Ed25519),
            PublicKey::EcdsaP256(_) => Some(SignatureAlg::EcdsaP256),
            PublicKey::Rsa { .. } => {
                let Some(list) = &self.server_sig_algs else {
                    return Some(SignatureAlg::RsaSha256);
                };
                if self.openssh_74 {
                    return Some(SignatureAlg::RsaSha512);
                }
                [SignatureAlg::RsaSha512, SignatureAlg::RsaSha256]
                    .into_iter()
                    .find(|alg| list.split(',').any(|name| name == alg.name()))
            }
        }
    }

    /// Handles one packet from [`Transport::decode`]: SERVICE_ACCEPT or a message numbered
    /// 50 to 79. A protocol error queues a DISCONNECT through `transport` and is returned;
    /// a message numbered 80 or above belongs to the connection layer and is refused with
    /// [`Error::Misuse`], leaving the connection as it was.
    pub fn handle(&mut self, transport: &mut Transport, payload: &[u8]) -> Result<(), Error> {
        if matches!(self.state, State::Failed) {
            return Err(Error::Closed);
        }
        let number = MessageNumber(payload.first().copied().unwrap_or(0));
        let result = match number {
            MessageNumber::SERVICE_ACCEPT => self.on_service_accept(transport, payload),
            MessageNumber::USERAUTH_FAILURE => self.on_failure(payload),
            MessageNumber::USERAUTH_SUCCESS => self.on_success(transport, payload),
            MessageNumber::USERAUTH_BANNER => self.on_banner(payload),
            USERAUTH_60 => self.on_60(payload),
            n if n.0 >= 80 => return Err(Error::Misuse("not an authentication message")),
            // 50 (USERAUTH_REQUEST) and 61 (INFO_RESPONSE) only ever go from client to
            // server; 62 to 79 belong to methods this client never starts.
            n => Err(protocol(format!("unexpected {n:?} during authentication"))),
        };
        result.map_err(|e| self.fail(transport, e))
    }

    /// Sends a `none` request (RFC 4252 section 5.2). The server answers with FAILURE
    /// and the methods that can continue, or with SUCCESS if it needs no authentication.
    pub fn request_none(&mut self, transport: &mut Transport) -> Result<(), Error> {
        self.check_can_request()?;
        let user = self.user.as_bytes();
        transport.send(|p| put_head(p, user, Method::None))?;
        self.state = State::Waiting(Outstanding::None);
        Ok(())
    }

    /// Asks whether the server would accept `key` signing with `alg` (RFC 4252 section 7),
    /// without a signature. The answer is [`ClientAuthEvent::KeyAccepted`] or a
    /// [`ClientAuthEvent::Failure`]. A key must be queried before it signs, so the private
    /// key (or the agent) is only used for a key the server will take.
    pub fn query_publickey(
        &mut self,
        transport: &mut Transport,
        key: &PublicKey,
        alg: SignatureAlg,
    ) -> Result<(), Error> {
        self.check_can_request()?;
        if !key.supports(alg) {
            return Err(Error::Misuse(
                "the key cannot make signatures of this algorithm",
            ));
        }
        let user = self.user.as_bytes();
        let blob = key.to_blob();
        transport.send(|p| {
            put_head(p, user, Method::PublicKey);
            p.put_bool(false);
            p.put_string(alg.name().as_bytes());
            p.put_string(&blob);
        })?;
        self.state = State::Waiting(Outstanding::Query {
            key: key.clone(),
            alg,
        });
        Ok(())
    }

    /// The bytes to sign for a `publickey` request with `key` and `alg` (RFC 4252 section
    /// 7): the session identifier, then the request up to the signature. Fails before the
    /// first key exchange, which makes the session identifier.
    pub fn signed_data(
        &self,
        transport: &Transport,
        key: &PublicKey,
        alg: SignatureAlg,
    ) -> Result<Vec<u8>, Error> {
        if !key.supports(alg) {
            return Err(Error::Misuse(
                "the key cannot make signatures of this algorithm",
            ));
        }
        let session_id = transport.session_id().ok_or(Error::Misuse(
            "no session identifier before the first key exchange",
        ))?;
        Ok(msg::publickey_signed_data(
            session_id,
            self.user.as_bytes(),
            SERVICE_CONNECTION.as_bytes(),
            alg.name().as_bytes(),
            &key.to_blob(),
        ))
    }

    /// Sends the signed `publickey` request for the key and algorithm the server accepted
    /// with [`ClientAuthEvent::KeyAccepted`]. `signature` is the whole signature blob
    /// (`string algorithm, string signature`, RFC 4253 section 6.6) over
    /// [`ClientAuth::signed_data`].
    ///
    /// Fails with [`Error::Misuse`], sending nothing, if this key and algorithm were not
    /// accepted or the blob names another algorithm: an old agent asked for an RSA SHA-2
    /// signature may answer with SHA-1 `ssh-rsa`, which must not reach the server.
    pub fn send_publickey_signature(
        &mut self,
        transport: &mut Transport,
        key: &PublicKey,
        alg: SignatureAlg,
        signature: &[u8],
    ) -> Result<(), Error> {
        self.check_can_request()?;
        match &self.state {
            State::Sign {
                key: accepted,
                alg: accepted_alg,
            } if accepted == key && *accepted_alg == alg => {}
            _ => {
                return Err(Error::Misuse(
                    "the server has not accepted this key with this algorithm",
                ));
            }
        }
        if !signature_names(signature, alg) {
            return Err(Error::Misuse(
                "the signature blob is not of the accepted algorithm",
            ));
        }
        let user = self.user.as_bytes();
        let blob = key.to_blob();
        transport.send(|p| {
            put_head(p, user, Method::PublicKey);
            p.put_bool(true);
            p.put_string(alg.name().as_bytes());
            p.put_string(&blob);
            p.put_string(signature);
        })?;
        self.state = State::Waiting(Outstanding::Signed);
        Ok(())
    }

    /// Sends a `password` request (RFC 4252 section 8). The password goes straight into
    /// the transport's packet buffer; nothing here keeps it. The answer is SUCCESS,
    /// FAILURE, or [`ClientAuthEvent::PasswordChangeRequested`].
    ///
    /// The packet is padded to a multiple of 64 bytes ([`Transport::send_secret`]), so its
    /// length tells an observer little about the password's.
    pub fn request_password(
        &mut self,
        transport: &mut Transport,
        password: &[u8],
    ) -> Result<(), Error> {
        self.check_can_request()?;
        let user = self.user.as_bytes();
        transport.send_secret(|p| {
            put_head(p, user, Method::Password);
            p.put_bool(false);
            p.put_string(password);
        })?;
        self.state = State::Waiting(Outstanding::Password);
        Ok(())
    }

    /// Sends a `keyboard-interactive` request (RFC 4256 section 3.1). `submethods` is a
    /// hint for the server, usually empty. The server answers with INFO_REQUEST rounds
    /// and then SUCCESS or FAILURE.
    pub fn request_keyboard_interactive(
        &mut self,
        transport: &mut Transport,
        submethods: &str,
    ) -> Result<(), Error> {
        self.check_can_request()?;
        let user = self.user.as_bytes();
        transport.send(|p| {
            put_head(p, user, Method::KeyboardInteractive);
            // The language tag is deprecated (RFC 4256 section 3.1) and sent empty.
            p.put_string(b"");
            p.put_string(submethods.as_bytes());
        })?;
        self.state = State::Waiting(Outstanding::KeyboardInteractive);
        Ok(())
    }

    /// Answers the outstanding [`ClientAuthEvent::InfoRequest`] with one response per
    /// prompt, in order (RFC 4256 section 3.4). The responses go straight into the
    /// transport's packet buffer; nothing here keeps them.
    pub fn send_info_response(
        &mut self,
        transport: &mut Transport,
        responses: &[&[u8]],
    ) -> Result<(), Error> {
        let State::Prompts(prompts) = self.state else {
            return Err(Error::Misuse("no INFO_REQUEST is waiting for responses"));
        };
        if responses.len() != prompts {
            return Err(Error::Misuse(
                "the number of responses differs from the number of prompts",
            ));
        }
        // At most MAX_PROMPTS, so the count fits.
        let count = u32::try_from(prompts).unwrap_or(u32::MAX);
        transport.send_secret(|p| {
            p.put_u8(USERAUTH_INFO_RESPONSE.0);
            p.put_u32(count);
            for response in responses {
                p.put_string(response);
            }
        })?;
        self.state = State::Waiting(Outstanding::KeyboardInteractive);
        Ok(())
    }

    /// Whether a new request may go out now.
    fn check_can_request(&self) -> Result<(), Error> {
        match self.state {
            State::Idle | State::Sign { .. } | State::Prompts(_) => Ok(()),
            State::New | State::ServiceRequested => Err(Error::Misuse(
                "the server has not accepted the ssh-userauth service yet",
            )),
            State::Waiting(_) => Err(Error::Misuse(
                "a request is waiting for the server's answer",
            )),
            State::Done => Err(Error::Misuse("authentication has already succeeded")),
            State::Failed => Err(Error::Closed),
        }
    }

    /// Ends the connection for a protocol error; other errors pass through.
    fn fail(&mut self, transport: &mut Transport, e: Error) -> Error {
        if let Error::Protocol { reason, detail } = &e {
            log::debug!("authentication failed: {detail}");
            self.state = State::Failed;
            transport.disconnect(*reason, detail);
        }
        e
    }

    fn on_service_accept(&mut self, transport: &Transport, payload: &[u8]) -> Result<(), Error> {
        if !matches!(self.state, State::ServiceRequested) {
            return Err(protocol("SERVICE_ACCEPT that was not asked for"));
        }
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        // Some old servers send SERVICE_ACCEPT without the name; OpenSSH lets that pass,
        // and so does this. A name, if present, must be the one requested.
        if !r.is_empty() {
            let name = r.string("service name")?;
            r.finish()?;
            if name != SERVICE_USERAUTH.as_bytes() {
                return Err(protocol(
                    "SERVICE_ACCEPT for a service that was not asked for",
                ));
            }
        }
        self.openssh_74 = transport
            .peer_version()
            .is_some_and(|v| v.software().starts_with("OpenSSH_7.4"));
        self.state = State::Idle;
        self.events.push_back(ClientAuthEvent::ServiceAccepted);
        Ok(())
    }

    fn on_failure(&mut self, payload: &[u8]) -> Result<(), Error> {
        let State::Waiting(outstanding) = &self.state else {
            return Err(protocol("USERAUTH_FAILURE with no request outstanding"));
        };
        let method = outstanding.method();
        let query = matches!(outstanding, Outstanding::Query { .. });
        let failure = Failure::parse(payload)?;
        // A query authenticates nothing (RFC 4252 section 7), so it cannot succeed in part.
        if query && failure.partial_success {
            return Err(protocol("partial success in answer to a public key query"));
        }
        let can_continue: Vec<String> = failure.can_continue.iter().map(str::to_owned).collect();
        log::debug!(
            "authentication failure method={} can_continue={} partial_success={}",
            method.name(),
            failure.can_continue.as_str(),
            failure.partial_success
        );
        if failure.partial_success {
            self.partial.push(method);
        }
        self.can_continue = Some(can_continue.clone());
        self.state = State::Idle;
        self.events.push_back(ClientAuthEvent::Failure {
            method,
            can_continue,
            partial_success: failure.partial_success,
        });
        Ok(())
    }

    fn on_success(&mut self, transport: &mut Transport, payload: &[u8]) -> Result<(), Error> {
        let method = match &self.state {
            // RFC 4252 section 7: a query is answered with PK_OK or FAILURE, never SUCCESS.
            State::Waiting(Outstanding::Query { .. }) => {
                return Err(protocol("USERAUTH_SUCCESS in answer to a public key query"));
            }
            State::Waiting(outstanding) => outstanding.method(),
            _ => return Err(protocol("USERAUTH_SUCCESS with no request outstanding")),
        };
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        r.finish()?;
        log::debug!("authenticated method={}", method.name());
        self.state = State::Done;
        transport.set_authenticated();
        self.events.push_back(ClientAuthEvent::Success);
        Ok(())
    }

    /// RFC 4252 section 5.4: a banner may come at any time after the service starts and
    /// before SUCCESS.
    fn on_banner(&mut self, payload: &[u8]) -> Result<(), Error> {
        match self.state {
            State::Idle | State::Waiting(_) | State::Sign { .. } | State::Prompts(_) => {}
            _ => return Err(protocol("USERAUTH_BANNER outside authentication")),
        }
        let text = msg::parse_banner(payload)?;
        self.events.push_back(ClientAuthEvent::Banner(msg::sanitize(
            text,
            MAX_BANNER_CHARS,
        )));
        Ok(())
    }

    /// Message 60 means what the outstanding request's method says it means (RFC 4252
    /// section 6).
    fn on_60(&mut self, payload: &[u8]) -> Result<(), Error> {
        match core::mem::replace(&mut self.state, State::Idle) {
            State::Waiting(Outstanding::Query { key, alg }) => {
                // RFC 4252 section 7: PK_OK repeats the algorithm and key of the query.
                let mut r = Reader::new(payload);
                r.u8("message number")?;
                let echoed_alg = r.string("public key algorithm")?;
                let echoed_blob = r.string("public key blob")?;
                r.finish()?;
                if echoed_alg != alg.name().as_bytes() || echoed_blob != key.to_blob() {
                    return Err(protocol(
                        "PK_OK for a key or algorithm that was not queried",
                    ));
                }
                log::debug!("server accepts key type={} alg={}", key.key_type(), alg);
                self.state = State::Sign {
                    key: key.clone(),
                    alg,
                };
                self.events
                    .push_back(ClientAuthEvent::KeyAccepted { key, alg });
            }
            State::Waiting(Outstanding::Password) => {
                let mut r = Reader::new(payload);
                r.u8("message number")?;
                let prompt = r.string("password change prompt")?;
                r.string("language tag")?;
                r.finish()?;
                log::debug!("server asks for a password change");
                self.events
                    .push_back(ClientAuthEvent::PasswordChangeRequested {
                        prompt: msg::sanitize(prompt, MAX_PROMPT_CHARS),
                    });
            }
            State::Waiting(Outstanding::KeyboardInteractive) => {
                let request = InfoRequest::parse(payload)?;
                let request = sanitize_info_request(&request);
                self.state = State::Prompts(request.prompts.len());
                self.events.push_back(ClientAuthEvent::InfoRequest(request));
            }
            _ => {
                return Err(protocol(
                    "message 60 with no request outstanding that expects it",
                ));
            }
        }
        Ok(())
    }
}

fn protocol(detail: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::Protocol {
        reason: DisconnectReason::PROTOCOL_ERROR,
        detail: detail.into(),
    }
}

fn put_head(p: &mut Vec<u8>, user: &[u8], method: Method) {
    msg::put_request_head(p, user, SERVICE_CONNECTION.as_bytes(), method);
}

/// Whether `blob` is a well-formed signature blob of `alg`.
fn signature_names(blob: &[u8], alg: SignatureAlg) -> bool {
    let mut r = Reader::new(blob);
    let name = r.string("signature algorithm");
    let signature = r.string("signature");
    name.is_ok_and(|n| n == alg.name().as_bytes()) && signature.is_ok() && r.finish().is_ok()
}

/// The request with every text made safe to show: the server chooses these strings, and
/// a terminal would obey escape sequences in them.
fn sanitize_info_request(request: &InfoRequest) -> InfoRequest {
    let clean = |text: &str| msg::sanitize(text.as_bytes(), MAX_PROMPT_CHARS);
    InfoRequest {
        name: clean(&request.name),
        instruction: clean(&request.instruction),
        prompts: request
            .prompts
            .iter()
            .map(|prompt| Prompt {
                text: clean(&prompt.text),
                echo: prompt.echo,
            })
            .collect(),
    }
}
