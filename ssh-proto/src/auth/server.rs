//! The server side of RFC 4252 authentication, with `keyboard-interactive` (RFC 4256).
//!
//! [`ServerAuth`] runs beside a server [`Transport`]. It enforces the protocol, the limits
//! and the cryptography (a `publickey` signature is verified here, never by the caller);
//! the application decides who may log in. The call order:
//!
//! 1. Route every packet from [`Transport::decode`] whose message number is 5 or 50 to 79
//!    to [`ServerAuth::handle`].
//! 2. After every call, take [`ServerAuth::poll_event`] until it returns `None`. Each
//!    decision event waits for one answer: [`ServerAuth::answer_query`] after
//!    [`ServerAuthEvent::PublicKeyQuery`]; [`ServerAuth::accept`] or [`ServerAuth::reject`]
//!    after the others, or [`ServerAuth::send_info_request`] for `keyboard-interactive`.
//!    The answer may come later (after a lookup elsewhere): requests that arrive meanwhile
//!    wait in a queue no longer than the attempt limit and are handled one at a time, as
//!    RFC 4252 section 5 requires of pipelined requests.
//! 3. [`ServerAuthEvent::Authenticated`] ends it: USERAUTH_SUCCESS is sent, the transport
//!    was told with [`Transport::set_authenticated`], and later requests are ignored (RFC
//!    4252 section 5.1).
//!
//! An error from `handle` or from an answer ends the connection: a DISCONNECT is queued in
//! the transport, as for the transport's own errors. Misuse by the caller (an answer with
//! no decision waiting) returns [`Error::Misuse`] and changes nothing.
//!
//! Attempts. Every request counts as one attempt, with two exceptions: the first request
//! of the connection if it is `none` with a valid user name (clients send it to learn the
//! methods, RFC 4252 section 5.2, and OpenSSH does not count it either), and a signed
//! `publickey` request for the very key, algorithm and user that the request before it
//! queried and got PK_OK for (query and signature are one attempt). OpenSSH counts
//! failures and lets a query that gets PK_OK go free; counting the query instead gives the
//! same result for honest clients and stops a client that knows an accepted public key,
//! but not its private half, from looping on queries. A failure once the limit is reached,
//! or any counted request past it, is a disconnect with NO_MORE_AUTH_METHODS_AVAILABLE
//! instead of a FAILURE, as OpenSSH's MaxAuthTries does; RFC 4252 section 4 recommends
//! such a limit.

use core::fmt;
use std::borrow::Cow;
use std::collections::VecDeque;

use zeroize::Zeroizing;

use crate::auth::msg::{
    self, InfoRequest, MAX_PROMPTS, Method, Request, RequestBody, SERVICE_CONNECTION,
    SERVICE_USERAUTH, USERAUTH_60, USERAUTH_INFO_RESPONSE,
};
use crate::crypto::CryptoProvider;
use crate::error::Error;
use crate::hostkey::{PublicKey, SignatureAlg};
use crate::msg::{DisconnectReason, MessageNumber};
use crate::transport::Transport;
use crate::wire::{Reader, WireError, Writer};

/// OpenSSH's MaxAuthTries default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// Longer user names are refused; no account system has names this long.
pub const DEFAULT_MAX_USER_LEN: usize = 1024;

/// How many characters of a user name or other peer text go into a log line.
const LOG_CHARS: usize = 64;

/// What the server allows, per connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLimits {
    /// Attempts per connection (see the module docs for what counts).
    pub max_attempts: u32,
    /// User names longer than this many bytes fail without reaching the application.
    pub max_user_len: usize,
    /// Text sent in USERAUTH_BANNER right after SERVICE_ACCEPT (RFC 4252 section 5.4).
    pub banner: Option<String>,
    /// The methods offered, in the order FAILURE lists them. `none` is never offered
    /// (RFC 4252 section 5.2): every login needs a credential.
    pub methods: Vec<Method>,
}

impl Default for AuthLimits {
    /// Six attempts, 1 KiB user names, no banner, and `publickey` only: password and
    /// keyboard-interactive are turned on by configuration, never by default.
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_user_len: DEFAULT_MAX_USER_LEN,
            banner: None,
            methods: vec![Method::PublicKey],
        }
    }
}

/// The application's verdict on a credential.
#[derive(Debug)]
pub enum Outcome<P> {
    /// The user is in, with these permissions (for a gateway, the `authorized_keys`
    /// options of the key that matched).
    Success(P),
    /// This credential is good but not enough (RFC 4252 section 5.1): the client must
    /// also pass one of `remaining`. A partial success carries no permissions, so none
    /// can leak into the final one; only the last method's [`Outcome::Success`] counts.
    Partial { remaining: Vec<Method> },
}

/// Something the application must know or decide. User names here are valid UTF-8, hold
/// no control characters and fit [`AuthLimits::max_user_len`]; anything else was refused
/// before reaching the application.
pub enum ServerAuthEvent<P> {
    /// "Would this key be accepted?" (RFC 4252 section 7), without a signature. Answer with
    /// [`ServerAuth::answer_query`]. Saying yes authorises nothing: it only invites the
    /// client to prove it holds the private key.
    PublicKeyQuery {
        user: String,
        key: PublicKey,
        alg: SignatureAlg,
    },
    /// The client proved it holds this key: its signature over the session identifier and
    /// the request verified. Decide with [`ServerAuth::accept`] or [`ServerAuth::reject`].
    PublicKeyVerified {
        user: String,
        key: PublicKey,
        alg: SignatureAlg,
    },
    /// A password (RFC 4252 section 8). Decide with accept or reject.
    Password {
        user: String,
        password: Zeroizing<Vec<u8>>,
    },
    /// The client starts `keyboard-interactive` (RFC 4256 section 3.1). `submethods` is
    /// the client's hint, made printable. Send prompts with
    /// [`ServerAuth::send_info_request`], or accept or reject.
    KeyboardInteractive { user: String, submethods: String },
    /// The answers to the last INFO_REQUEST, one per prompt, in order (RFC 4256 section
    /// 3.4). Accept, reject, or send another request.
    InfoResponse {
        user: String,
        responses: Vec<Zeroizing<Vec<u8>>>,
    },
    /// USERAUTH_SUCCESS is out. `method` is the last method, `permissions` what the
    /// application gave with it.
    Authenticated {
        user: String,
        method: Method,
        permissions: P,
    },
}

/// Passwords and responses are never shown.
impl<P: fmt::Debug> fmt::Debug for ServerAuthEvent<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PublicKeyQuery { user, key, alg } => f
                .debug_struct("PublicKeyQuery")
                .field("user", user)
                .field("key", key)
                .field("alg", alg)
                .finish(),
            Self::PublicKeyVerified { user, key, alg } => f
                .debug_struct("PublicKeyVerified")
                .field("user", user)
                .field("key", key)
                .field("alg", alg)
                .finish(),
            Self::Password { user, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .finish_non_exhaustive(),
            Self::KeyboardInteractive { user, submethods } => f
                .debug_struct("KeyboardInteractive")
                .field("user", user)
                .field("submethods", submethods)
                .finish(),
            Self::InfoResponse { user, responses } => f
                .debug_struct("InfoResponse")
                .field("user", user)
                .field("count", &responses.len())
                .finish_non_exhaustive(),
            Self::Authenticated {
                user,
                method,
                permissions,
            } => f
                .debug_struct("Authenticated")
                .field("user", user)
                .field("method", method)
                .field("permissions", permissions)
                .finish(),
        }
    }
}

/// A request the application has not answered yet.
#[derive(Debug)]
enum Pending {
    /// A `publickey` query; the blob is echoed in PK_OK.
    Query {
        user: String,
        alg: SignatureAlg,
        blob: Vec<u8>,
    },
    /// A verified signature, a password, or a keyboard-interactive step.
    Decision { user: String, method: Method },
}

#[derive(Debug)]
enum State {
    /// Waiting for SERVICE_REQUEST `ssh-userauth` (RFC 4253 section 10).
    Service,
    /// Ready for the next request.
    Idle,
    Deciding(Pending),
    /// INFO_REQUEST is out; the client owes INFO_RESPONSE with this many answers.
    Info {
        user: String,
        prompts: usize,
    },
    /// USERAUTH_SUCCESS is out.
    Done,
    /// An error ended the connection.
    Closed,
}

/// The PK_OK most recently sent, so the signed request that follows it is not counted
/// twice.
#[derive(Debug)]
struct PkOk {
    user: String,
    alg: SignatureAlg,
    blob: Vec<u8>,
}

/// Methods passed with partial success, for one user.
#[derive(Debug)]
struct Chain {
    user: String,
    done: Vec<Method>,
    can_continue: Vec<Method>,
}

/// The server's authentication state machine. `P` is what the application attaches to a
/// success, handed back in [`ServerAuthEvent::Authenticated`]. See the module docs for
/// the call order.
pub struct ServerAuth<P> {
    provider: &'static dyn CryptoProvider,
    limits: AuthLimits,
    state: State,
    /// Requests that arrived while a decision was pending, whole payloads (a password is
    /// in there, hence the wipe on drop).
    queue: VecDeque<Zeroizing<Vec<u8>>>,
    events: VecDeque<ServerAuthEvent<P>>,
    attempts: u32,
    seen_request: bool,
    pk_ok: Option<PkOk>,
    chain: Option<Chain>,
}

impl<P> fmt::Debug for ServerAuth<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAuth")
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("queued", &self.queue.len())
            .field("methods", &self.limits.methods)
            .finish_non_exhaustive()
    }
}

impl<P> ServerAuth<P> {
    /// A machine waiting for SERVICE_REQUEST. `provider` verifies `publickey` signatures;
    /// give it the transport's. Duplicate methods and `none` are dropped from
    /// `limits.methods`.
    pub fn new(provider: &'static dyn CryptoProvider, mut limits: AuthLimits) -> Self {
        let mut methods = Vec::new();
        for m in limits.methods {
            if m != Method::None && !methods.contains(&m) {
                methods.push(m);
            }
        }
        limits.methods = methods;
        Self {
            provider,
            limits,
            state: State::Service,
            queue: VecDeque::new(),
            events: VecDeque::new(),
            attempts: 0,
            seen_request: false,
            pk_ok: None,
            chain: None,
        }
    }

    pub fn poll_event(&mut self) -> Option<ServerAuthEvent<P>> {
        self.events.pop_front()
    }

    /// Whether USERAUTH_SUCCESS was sent.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Attempts counted so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The methods the user of the pending request has already passed with partial
    /// success; empty when there were none or the user name changed since.
    pub fn partial_methods(&self) -> &[Method] {
        self.chain.as_ref().map_or(&[], |c| &c.done)
    }

    /// Handles one message from the client: SERVICE_REQUEST (5), USERAUTH_REQUEST (50),
    /// INFO_RESPONSE (61). Messages only a server may send (51, 52, 53, 60) and the
    /// unassigned numbers up to 79 end the connection with PROTOCOL_ERROR.
    pub fn handle(&mut self, transport: &mut Transport, payload: &[u8]) -> Result<(), Error> {
        self.check_open(transport)?;
        let Some(&number) = payload.first() else {
            return Err(Error::Misuse(
                "an empty payload is not an authentication message",
            ));
        };
        match MessageNumber(number) {
            MessageNumber::SERVICE_REQUEST => self.service_request(transport, payload),
            MessageNumber::USERAUTH_REQUEST => self.request(transport, payload),
            USERAUTH_INFO_RESPONSE => self.info_response(transport, payload),
            n @ (MessageNumber::USERAUTH_FAILURE
            | MessageNumber::USERAUTH_SUCCESS
            | MessageNumber::USERAUTH_BANNER
            | USERAUTH_60) => self.fatal(
                transport,
                DisconnectReason::PROTOCOL_ERROR,
                format!("the client sent {n:?}, which only a server sends"),
            ),
            MessageNumber(n @ (54..=59 | 62..=79)) => self.fatal(
                transport,
                DisconnectReason::PROTOCOL_ERROR,
                format!("unknown authentication message {n}"),
            ),
            _ => Err(Error::Misuse("not an authentication message")),
        }
    }

    /// Answers [`ServerAuthEvent::PublicKeyQuery`]: PK_OK if `accept`, else FAILURE (which
    /// counts as a failed attempt).
    pub fn answer_query(&mut self, transport: &mut Transport, accept: bool) -> Result<(), Error> {
        self.check_open(transport)?;
        let (user, alg, blob) = match core::mem::replace(&mut self.state, State::Idle) {
            State::Deciding(Pending::Query { user, alg, blob }) => (user, alg, blob),
            other => {
                self.state = other;
                return Err(Error::Misuse(
                    "no public key query is waiting for an answer",
                ));
            }
        };
        log::debug!(
            "userauth publickey query answered user={} accept={accept}",
            msg::sanitize(user.as_bytes(), LOG_CHARS)
        );
        if accept {
            // RFC 4252 section 7: PK_OK echoes the algorithm name and the blob.
            transport.send(|p| {
                p.put_u8(USERAUTH_60.0);
                p.put_string(alg.name().as_bytes());
                p.put_string(&blob);
            })?;
            self.pk_ok = Some(PkOk { user, alg, blob });
        } else {
            self.fail(transport)?;
        }
        self.drain(transport)
    }

    /// Accepts the pending credential (any decision event but a query). With
    /// [`Outcome::Success`], USERAUTH_SUCCESS goes out, the transport is told, and
    /// [`ServerAuthEvent::Authenticated`] follows. With [`Outcome::Partial`], FAILURE with
    /// partial success lists the methods in `remaining` that are offered and not passed
    /// yet; if none is left that is a misuse and nothing changes.
    pub fn accept(&mut self, transport: &mut Transport, outcome: Outcome<P>) -> Result<(), Error> {
        self.check_open(transport)?;
        let State::Deciding(Pending::Decision { user, method }) = &self.state else {
            return Err(Error::Misuse("no credential is waiting for a decision"));
        };
        let (user, method) = (user.clone(), *method);
        match outcome {
            Outcome::Success(permissions) => {
                transport.send(|p| p.put_u8(MessageNumber::USERAUTH_SUCCESS.0))?;
                transport.set_authenticated();
                log::debug!(
                    "userauth success method={} user={}",
                    method.name(),
                    msg::sanitize(user.as_bytes(), LOG_CHARS)
                );
                self.state = State::Done;
                self.queue.clear();
                self.chain = None;
                self.pk_ok = None;
                self.events.push_back(ServerAuthEvent::Authenticated {
                    user,
                    method,
                    permissions,
                });
                Ok(())
            }
            Outcome::Partial { remaining } => {
                let passed: &[Method] = match &self.chain {
                    Some(chain) if chain.user == user => &chain.done,
                    _ => &[],
                };
                let can_continue: Vec<Method> = (self.limits.methods.iter().copied())
                    .filter(|m| remaining.contains(m) && *m != method && !passed.contains(m))
                    .collect();
                if can_continue.is_empty() {
                    return Err(Error::Misuse(
                        "a partial success must leave an offered method not passed yet",
                    ));
                }
                let mut done = passed.to_vec();
                done.push(method);
                log::debug!(
                    "userauth partial success method={} user={} remaining={:?}",
                    method.name(),
                    msg::sanitize(user.as_bytes(), LOG_CHARS),
                    can_continue.iter().map(|m| m.name()).collect::<Vec<_>>()
                );
                self.chain = Some(Chain {
                    user,
                    done,
                    can_continue,
                });
                self.state = State::Idle;
                self.send_failure(transport, true)?;
                self.drain(transport)
            }
        }
    }

    /// Refuses the pending request, query or credential: FAILURE, a failed attempt.
    pub fn reject(&mut self, transport: &mut Transport) -> Result<(), Error> {
        self.check_open(transport)?;
        match core::mem::replace(&mut self.state, State::Idle) {
            State::Deciding(Pending::Query { user, .. } | Pending::Decision { user, .. }) => {
                log::debug!(
                    "userauth rejected user={}",
                    msg::sanitize(user.as_bytes(), LOG_CHARS)
                );
            }
            other => {
                self.state = other;
                return Err(Error::Misuse("no request is waiting for a decision"));
            }
        }
        self.fail(transport)?;
        self.drain(transport)
    }

    /// Sends prompts for the pending `keyboard-interactive` step (RFC 4256 section 3.2).
    /// The client's INFO_RESPONSE comes back as [`ServerAuthEvent::InfoResponse`]. At most
    /// [`MAX_PROMPTS`] prompts.
    pub fn send_info_request(
        &mut self,
        transport: &mut Transport,
        request: &InfoRequest,
    ) -> Result<(), Error> {
        self.check_open(transport)?;
        if request.prompts.len() > MAX_PROMPTS as usize {
            return Err(Error::Misuse("too many prompts in one INFO_REQUEST"));
        }
        let user = match core::mem::replace(&mut self.state, State::Idle) {
            State::Deciding(Pending::Decision {
                user,
                method: Method::KeyboardInteractive,
            }) => user,
            other => {
                self.state = other;
                return Err(Error::Misuse(
                    "no keyboard-interactive step is waiting for a decision",
                ));
            }
        };
        transport.send(|p| request.write(p))?;
        log::debug!(
            "userauth keyboard-interactive prompts={} user={}",
            request.prompts.len(),
            msg::sanitize(user.as_bytes(), LOG_CHARS)
        );
        self.state = State::Info {
            user,
            prompts: request.prompts.len(),
        };
        self.drain(transport)
    }

    fn check_open(&self, transport: &Transport) -> Result<(), Error> {
        if matches!(self.state, State::Closed) || transport.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// RFC 4253 section 10: one SERVICE_REQUEST, for `ssh-userauth`. A second one is a
    /// protocol error: this layer runs once per connection.
    fn service_request(&mut self, t: &mut Transport, payload: &[u8]) -> Result<(), Error> {
        if !matches!(self.state, State::Service) {
            return self.fatal(
                t,
                DisconnectReason::PROTOCOL_ERROR,
                "SERVICE_REQUEST after the service started",
            );
        }
        let service = match parse_service_request(payload) {
            Ok(s) => s,
            Err(e) => {
                return self.fatal(
                    t,
                    DisconnectReason::PROTOCOL_ERROR,
                    format!("SERVICE_REQUEST: {e}"),
                );
            }
        };
        if service != SERVICE_USERAUTH.as_bytes() {
            log::debug!(
                "service refused service={}",
                msg::sanitize(service, LOG_CHARS)
            );
            return self.fatal(
                t,
                DisconnectReason::SERVICE_NOT_AVAILABLE,
                "only ssh-userauth is available",
            );
        }
        t.send(|p| {
            p.put_u8(MessageNumber::SERVICE_ACCEPT.0);
            p.put_string(SERVICE_USERAUTH.as_bytes());
        })?;
        if let Some(banner) = &self.limits.banner {
            t.send(|p| {
                p.put_u8(MessageNumber::USERAUTH_BANNER.0);
                p.put_string(banner.as_bytes());
                p.put_string(b"");
            })?;
        }
        self.state = State::Idle;
        Ok(())
    }

    /// USERAUTH_REQUEST: handled now, queued while a decision is pending, ignored after
    /// success (RFC 4252 section 5.1).
    fn request(&mut self, t: &mut Transport, payload: &[u8]) -> Result<(), Error> {
        match self.state {
            State::Service => {
                return self.fatal(
                    t,
                    DisconnectReason::PROTOCOL_ERROR,
                    "USERAUTH_REQUEST before the ssh-userauth service was accepted",
                );
            }
            State::Done => {
                log::trace!("userauth request after success ignored");
                return Ok(());
            }
            _ => {}
        }
        if let Err(e) = Request::parse(payload) {
            return self.fatal(
                t,
                DisconnectReason::PROTOCOL_ERROR,
                format!("USERAUTH_REQUEST: {e}"),
            );
        }
        if matches!(self.state, State::Deciding(_)) || !self.queue.is_empty() {
            // Each queued request will count as an attempt, so more than the limit can
            // only end in a disconnect; end it now, before holding more.
            let room = usize::try_from(self.limits.max_attempts).unwrap_or(usize::MAX);
            if self.queue.len() >= room {
                return self.fatal(
                    t,
                    DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE,
                    "too many authentication requests",
                );
            }
            self.queue.push_back(Zeroizing::new(payload.to_vec()));
            return Ok(());
        }
        self.process(t, payload)
    }

    /// Handles queued requests until one needs the application.
    fn drain(&mut self, t: &mut Transport) -> Result<(), Error> {
        while matches!(self.state, State::Idle | State::Info { .. }) {
            let Some(payload) = self.queue.pop_front() else {
                break;
            };
            self.process(t, &payload)?;
        }
        Ok(())
    }

    /// Handles one request whose framing was checked when it arrived.
    fn process(&mut self, t: &mut Transport, payload: &[u8]) -> Result<(), Error> {
        let req = match Request::parse(payload) {
            Ok(req) => req,
            Err(e) => {
                return self.fatal(
                    t,
                    DisconnectReason::PROTOCOL_ERROR,
                    format!("USERAUTH_REQUEST: {e}"),
                );
            }
        };
        if matches!(self.state, State::Info { .. }) {
            // A new request abandons keyboard-interactive; its attempt was counted when it
            // started, and the INFO_RESPONSE it would have had is now unexpected.
            log::debug!("userauth keyboard-interactive abandoned for a new request");
            self.state = State::Idle;
        }
        let first = !core::mem::replace(&mut self.seen_request, true);
        let pk_ok = self.pk_ok.take();

        // RFC 4252 section 5: a service that does not exist must never be authenticated,
        // and a disconnect is recommended. Only ssh-connection can follow, so a request
        // for another can never succeed and would only spend attempts.
        if req.service != SERVICE_CONNECTION.as_bytes() {
            log::debug!(
                "userauth service refused service={}",
                msg::sanitize(req.service, LOG_CHARS)
            );
            return self.fatal(
                t,
                DisconnectReason::SERVICE_NOT_AVAILABLE,
                "only ssh-connection can follow authentication",
            );
        }

        let user = match self.check_user(req.user) {
            Ok(user) => user,
            Err(why) => {
                self.count_attempt(t)?;
                log::debug!(
                    "userauth refused reason={why:?} user={} user_len={}",
                    msg::sanitize(req.user, LOG_CHARS),
                    req.user.len()
                );
                return self.fail(t);
            }
        };

        let method = Method::from_name(req.method);
        let after_pk_ok = match (&req.body, &pk_ok) {
            (
                RequestBody::PublicKey {
                    alg,
                    key_blob,
                    signature: Some(_),
                },
                Some(ok),
            ) => ok.user == user && ok.alg.name().as_bytes() == *alg && ok.blob == *key_blob,
            _ => false,
        };
        let free = (first && method == Some(Method::None)) || after_pk_ok;
        if !free {
            self.count_attempt(t)?;
        }

        if self.chain.as_ref().is_some_and(|c| c.user != user) {
            log::debug!("userauth user changed after partial success, starting over");
            self.chain = None;
        }

        let allowed = method.filter(|m| self.can_continue().contains(m));
        let Some(method) = allowed else {
            log::debug!(
                "userauth method refused method={} user={}",
                msg::sanitize(req.method, LOG_CHARS),
                msg::sanitize(user.as_bytes(), LOG_CHARS)
            );
            return self.fail(t);
        };

        match req.body {
            RequestBody::PublicKey {
                alg,
                key_blob,
                signature,
            } => self.publickey(t, user, req.service, alg, key_blob, signature),
            RequestBody::Password {
                password,
                new_password: None,
            } => {
                log::debug!(
                    "userauth password user={}",
                    msg::sanitize(user.as_bytes(), LOG_CHARS)
                );
                self.decide(
                    user.clone(),
                    method,
                    ServerAuthEvent::Password {
                        user,
                        password: Zeroizing::new(password.to_vec()),
                    },
                );
                Ok(())
            }
            RequestBody::Password {
                new_password: Some(_),
                ..
            } => {
                // RFC 4252 section 8 allows FAILURE in answer to a change; the server
                // never asks for one (no PASSWD_CHANGEREQ), so changing is not offered.
                log::debug!(
                    "userauth password change refused user={}",
                    msg::sanitize(user.as_bytes(), LOG_CHARS)
                );
                self.fail(t)
            }
            RequestBody::KeyboardInteractive { submethods } => {
                log::debug!(
                    "userauth keyboard-interactive user={}",
                    msg::sanitize(user.as_bytes(), LOG_CHARS)
                );
                self.decide(
                    user.clone(),
                    method,
                    ServerAuthEvent::KeyboardInteractive {
                        user,
                        submethods: msg::sanitize(submethods, 256),
                    },
                );
                Ok(())
            }
            RequestBody::None | RequestBody::Other { .. } => self.fail(t),
        }
    }

    /// RFC 4252 section 7. The key comes from this request's blob, and the signature must
    /// verify with it over this request's fields; nothing from an earlier query is used,
    /// so a PK_OK for one key never lends its standing to another.
    fn publickey(
        &mut self,
        t: &mut Transport,
        user: String,
        service: &[u8],
        alg_name: &[u8],
        blob: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<(), Error> {
        let alg = core::str::from_utf8(alg_name)
            .ok()
            .and_then(SignatureAlg::from_name);
        let Some(alg) = alg else {
            log::debug!(
                "userauth publickey algorithm refused alg={} user={}",
                msg::sanitize(alg_name, LOG_CHARS),
                msg::sanitize(user.as_bytes(), LOG_CHARS)
            );
            return self.fail(t);
        };
        let key = match PublicKey::from_blob(blob) {
            Ok(key) if key.supports(alg) => key,
            Ok(key) => {
                log::debug!(
                    "userauth publickey refused reason=type key_type={} alg={alg}",
                    key.key_type()
                );
                return self.fail(t);
            }
            Err(e) => {
                log::debug!("userauth publickey refused reason=blob error={e}");
                return self.fail(t);
            }
        };
        let Some(signature) = signature else {
            log::debug!(
                "userauth publickey query user={} key={}",
                msg::sanitize(user.as_bytes(), LOG_CHARS),
                key.fingerprint_sha256(self.provider)
            );
            self.events.push_back(ServerAuthEvent::PublicKeyQuery {
                user: user.clone(),
                key,
                alg,
            });
            self.state = State::Deciding(Pending::Query {
                user,
                alg,
                blob: blob.to_vec(),
            });
            return Ok(());
        };

        let Some(session_id) = t.session_id() else {
            return Err(Error::Misuse(
                "authentication before the first key exchange",
            ));
        };
        let data = msg::publickey_signed_data(session_id, user.as_bytes(), service, alg_name, blob);
        if let Err(e) = key.verify(self.provider, alg, &data, signature) {
            log::debug!(
                "userauth publickey signature refused user={} key={} error={e}",
                msg::sanitize(user.as_bytes(), LOG_CHARS),
                key.fingerprint_sha256(self.provider)
            );
            return self.fail(t);
        }
        log::debug!(
            "userauth publickey verified user={} key={}",
            msg::sanitize(user.as_bytes(), LOG_CHARS),
            key.fingerprint_sha256(self.provider)
        );
        self.decide(
            user.clone(),
            Method::PublicKey,
            ServerAuthEvent::PublicKeyVerified { user, key, alg },
        );
        Ok(())
    }

    /// INFO_RESPONSE: valid only while an INFO_REQUEST is outstanding, with one answer per
    /// prompt (RFC 4256 section 3.4).
    fn info_response(&mut self, t: &mut Transport, payload: &[u8]) -> Result<(), Error> {
        let (user, prompts) = match core::mem::replace(&mut self.state, State::Idle) {
            State::Info { user, prompts } => (user, prompts),
            State::Done => {
                self.state = State::Done;
                log::trace!("userauth INFO_RESPONSE after success ignored");
                return Ok(());
            }
            other => {
                self.state = other;
                return self.fatal(
                    t,
                    DisconnectReason::PROTOCOL_ERROR,
                    "INFO_RESPONSE with no INFO_REQUEST outstanding",
                );
            }
        };
        let responses = match msg::parse_info_response(payload) {
            Ok(r) if r.len() == prompts => r,
            Ok(r) => {
                return self.fatal(
                    t,
                    DisconnectReason::PROTOCOL_ERROR,
                    format!(
                        "INFO_RESPONSE has {} answers for {prompts} prompts",
                        r.len()
                    ),
                );
            }
            Err(e) => {
                return self.fatal(
                    t,
                    DisconnectReason::PROTOCOL_ERROR,
                    format!("INFO_RESPONSE: {e}"),
                );
            }
        };
        let responses = responses
            .into_iter()
            .map(|r| Zeroizing::new(r.to_vec()))
            .collect();
        self.decide(
            user.clone(),
            Method::KeyboardInteractive,
            ServerAuthEvent::InfoResponse { user, responses },
        );
        Ok(())
    }

    fn decide(&mut self, user: String, method: Method, event: ServerAuthEvent<P>) {
        self.events.push_back(event);
        self.state = State::Deciding(Pending::Decision { user, method });
    }

    /// Valid user names are UTF-8 without control characters and within the limit;
    /// anything else never reaches the application or a log line unescaped.
    fn check_user(&self, raw: &[u8]) -> Result<String, &'static str> {
        if raw.len() > self.limits.max_user_len {
            return Err("user name too long");
        }
        let name = core::str::from_utf8(raw).map_err(|_| "user name not UTF-8")?;
        if name.chars().any(char::is_control) {
            return Err("control character in user name");
        }
        Ok(name.to_owned())
    }

    fn can_continue(&self) -> &[Method] {
        match &self.chain {
            Some(chain) => &chain.can_continue,
            None => &self.limits.methods,
        }
    }

    fn count_attempt(&mut self, t: &mut Transport) -> Result<(), Error> {
        if self.attempts >= self.limits.max_attempts {
            return self.fatal(
                t,
                DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE,
                "too many authentication attempts",
            );
        }
        self.attempts += 1;
        Ok(())
    }

    /// Ends the current attempt with FAILURE, or with a disconnect once the attempts are
    /// used up.
    fn fail(&mut self, t: &mut Transport) -> Result<(), Error> {
        self.state = State::Idle;
        if self.attempts >= self.limits.max_attempts {
            return self.fatal(
                t,
                DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE,
                "too many authentication failures",
            );
        }
        self.send_failure(t, false)
    }

    /// RFC 4252 section 5.1: FAILURE lists the methods that can continue; partial success
    /// is set only in answer to a request that passed.
    fn send_failure(&self, t: &mut Transport, partial: bool) -> Result<(), Error> {
        let methods = self.can_continue();
        t.send(|p| msg::put_failure(p, methods.iter().map(|m| m.name()), partial))
    }

    fn fatal(
        &mut self,
        t: &mut Transport,
        reason: DisconnectReason,
        detail: impl Into<Cow<'static, str>>,
    ) -> Result<(), Error> {
        let detail = detail.into();
        log::debug!("userauth ended reason={reason:?} detail={detail}");
        t.disconnect(reason, &detail);
        self.state = State::Closed;
        self.queue.clear();
        Err(Error::Protocol { reason, detail })
    }
}

/// SSH_MSG_SERVICE_REQUEST (RFC 4253 section 10): the service name.
fn parse_service_request(payload: &[u8]) -> Result<&[u8], WireError> {
    let mut r = Reader::new(payload);
    r.u8("message number")?;
    let service = r.string("service name")?;
    r.finish()?;
    Ok(service)
}
