//! The `gateway` client asks for no forwarding and accepts no channel it did not ask for
//! (it never requests agent forwarding and never accepts agent or X11 channels), shown
//! end to end with the real binary.
//!
//! The client logs in to [`TestServer`] running a session by a [`SessionScript`]: once the
//! client's `exec` is accepted, the server opens four channels toward it that nothing
//! asked for: `x11` (RFC 4254 section 6.3.2), `auth-agent@openssh.com` (OpenSSH's
//! `PROTOCOL.agent`), `forwarded-tcpip` for a port the client never had forwarded (RFC
//! 4254 section 7.2) and `forwarded-streamlocal@openssh.com` (OpenSSH's `PROTOCOL`
//! section 2.4). Each must come back as CHANNEL_OPEN_FAILURE with the reason
//! ADMINISTRATIVELY_PROHIBITED, read by the server from the wire; a confirmation fails the
//! cell. Only when all four are answered does the server send the command's output,
//! `exit-status` 0, EOF and CLOSE, so the client's exit status 0 and its output show the
//! refusals left the session working.
//!
//! The server also records every channel and global request the client sent: the whole
//! list must be the one `exec`, so neither `auth-agent-req@openssh.com` nor `x11-req`
//! (RFC 4254 section 6.3.1) went out, nor anything else unasked. The client runs twice:
//! without an agent, and with `SSH_AUTH_SOCK` naming a live `ssh-agent` holding the key,
//! which is when a client that forwarded agents by default would give itself away.
//!
//! The test prints a table of its cells (`--nocapture`) and fails listing every failed
//! cell.

use std::process::Command;
use std::time::Duration;

use interop::forwarding::gateway_client;
use interop::peers::{Cells, KeyPair, RunOutput, SshAgent, TempDir, keygen, run};
use interop::server::{AuthConfig, OpenAnswer, Record, RequestSeen, SessionScript, TestServer};
use ssh_proto::config::Config;
use ssh_proto::connection::msg::{ChannelType, OpenFailureReason};

/// Far more than a login and a session take; a client still running then is killed and
/// its cells judged by what it did until then.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may take to record a connection after its client ended.
const RECORD_TIMEOUT: Duration = Duration::from_secs(10);
/// The output of the session's command, sent after every refusal.
const OUTPUT: &[u8] = b"the session outlived four refused channels\n";

/// The channels opened toward the client, none of which it asked for.
fn unrequested_opens() -> Vec<ChannelType<'static>> {
    vec![
        ChannelType::X11 {
            originator_address: b"127.0.0.1",
            originator_port: 41_234,
        },
        ChannelType::AuthAgent,
        // The client sent no `tcpip-forward` at all, for this port or any other.
        ChannelType::ForwardedTcpip {
            connected_address: b"127.0.0.1",
            connected_port: 2_222,
            originator_address: b"127.0.0.1",
            originator_port: 50_000,
        },
        ChannelType::ForwardedStreamlocal {
            socket_path: b"/tmp/unrequested-forward.sock",
            reserved: b"",
        },
    ]
}

#[test]
fn client_refuses_unrequested_channels_and_requests_no_forwarding() {
    let dir = TempDir::new("client-refusals");
    let Some(key) = keygen(dir.path(), "id_ed25519", "ed25519") else {
        return;
    };
    let opens = unrequested_opens();
    let script = SessionScript {
        opens: opens.clone(),
        output: OUTPUT.to_vec(),
        exit_status: 0,
    };
    let server =
        TestServer::start_with_session(Config::default(), AuthConfig::new(&key.public_key), script);
    let mut cells = Cells::new("the gateway client against channels it never asked for");

    let mut command = client(&key, &server);
    command.env_remove("SSH_AUTH_SOCK");
    check_client(
        &mut cells,
        "gateway, no agent",
        &server,
        &mut command,
        &opens,
    );

    if let Some(agent) = SshAgent::start() {
        agent.add(&key.private_key);
        let mut command = client(&key, &server);
        command.env("SSH_AUTH_SOCK", agent.socket());
        let row = "gateway, SSH_AUTH_SOCK set";
        check_client(&mut cells, row, &server, &mut command, &opens);
    }
    cells.finish();
}

/// `gateway ... 127.0.0.1 'echo hello'`: the command is the server's to ignore, but it
/// makes the client send `exec`.
fn client(key: &KeyPair, server: &TestServer) -> Command {
    let mut command = gateway_client(&key.private_key, server.port());
    command.arg("127.0.0.1").arg("echo hello");
    command
}

/// Runs one client and judges its connection: the session, the requests, and the answer
/// to each of `opens`.
fn check_client(
    cells: &mut Cells,
    row: &str,
    server: &TestServer,
    command: &mut Command,
    opens: &[ChannelType<'static>],
) {
    let before = server.records().len();
    let out = run(command, CLIENT_TIMEOUT);
    let records = server.wait_for_records(before + 1, RECORD_TIMEOUT);
    let record = match &records[before..] {
        [record] => record,
        more => {
            let why = format!(
                "expected one connection, the server recorded {}",
                more.len()
            );
            cells.record(row, "session", Err(format!("{why}\n{out}")));
            return;
        }
    };

    cells.record(row, "session", check_session(&out, record));
    cells.record(row, "requests", check_requests(record));
    for (i, open) in opens.iter().enumerate() {
        let kind = String::from_utf8_lossy(open.name()).into_owned();
        cells.record(row, &kind, check_refused(record, i, &kind));
    }
}

/// Logged in, opened only its session, and ended it as the server did: output, exit
/// status 0, no error on either side.
fn check_session(out: &RunOutput, record: &Record) -> Result<String, String> {
    let fail = |what: &str| Err(format!("{what}\nclient: {out}\nserver record:\n{record}"));
    if record.authenticated.is_none() {
        return fail("the client did not log in");
    }
    if record.client_opens != ["session"] {
        return fail("the client should open one session channel and nothing else");
    }
    if !record.session_finished || record.error.is_some() || record.client_left.is_none() {
        return fail("the session did not run to its end with the client leaving");
    }
    if out.timed_out || out.status.code() != Some(0) {
        return fail("the client should exit with the remote status 0");
    }
    if out.stdout != OUTPUT {
        return fail("the client should print the session's output");
    }
    Ok("output and exit status 0 after the refusals".to_owned())
}

/// The one channel request is `exec`, wanting a reply, and there is no global request:
/// in particular no `auth-agent-req@openssh.com` and no `x11-req`.
fn check_requests(record: &Record) -> Result<String, String> {
    let forbidden = ["auth-agent-req@openssh.com", "x11-req"];
    let sent: Vec<&RequestSeen> = record
        .channel_requests
        .iter()
        .chain(&record.global_requests)
        .filter(|r| forbidden.contains(&r.name.as_str()))
        .collect();
    if !sent.is_empty() {
        return Err(format!(
            "the client asked for forwarding: {sent:?}\n{record}"
        ));
    }
    if record.channel_requests != [RequestSeen::new("exec", true)]
        || !record.global_requests.is_empty()
    {
        return Err(format!(
            "expected only an exec wanting a reply; the client sent channel requests {:?} \
             and global requests {:?}",
            record.channel_requests, record.global_requests
        ));
    }
    Ok("exec only".to_owned())
}

/// The `i`th open toward the client, of type `kind`, was refused as administratively
/// prohibited.
fn check_refused(record: &Record, i: usize, kind: &str) -> Result<String, String> {
    let Some(open) = record.opened_to_client.get(i) else {
        return Err(format!("the server never opened {kind}\n{record}"));
    };
    if open.kind != kind {
        return Err(format!("open {i} was {}, not {kind}", open.kind));
    }
    match &open.answer {
        Some(OpenAnswer::Refused {
            reason: OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
            description,
        }) => Ok(format!("refused, prohibited: {description:?}")),
        Some(OpenAnswer::Refused {
            reason,
            description,
        }) => Err(format!(
            "refused with {reason:?} ({description:?}), expected ADMINISTRATIVELY_PROHIBITED"
        )),
        Some(OpenAnswer::Confirmed) => Err(format!("the client confirmed the {kind} open")),
        None => Err(format!(
            "the client never answered the {kind} open\n{record}"
        )),
    }
}
