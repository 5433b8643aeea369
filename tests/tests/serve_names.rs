//! Destination names through this project's forwarding server, `gateway serve`, with
//! OpenSSH 10.0's `ssh -W` as the client, checking the server's host key against a real
//! known_hosts file.
//!
//! What it proves, each cell with the client's exit status and the server's log line:
//!
//! - `-W localhost:PORT` reaches an echo service that listens on `127.0.0.1` only, with
//!   the name looked up off the server's loop. Where `localhost` gives `::1` first, this
//!   is the case that needs every address tried in turn; the cell notes the order this
//!   machine gives, and the gateway's unit tests pin the order logic with made-up
//!   addresses whose first one refuses.
//! - `-W [::1]:PORT`, an address and no name, reaches an echo service on `::1`.
//! - A name whose every address refuses is CONNECT_FAILED with the connect's own error,
//!   and the server carries on: a later channel through it still works.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use interop::forwarding::{Bastion, XorShift, brief, check_echoed, echo_service, echo_service_on};
use interop::peers::{Cells, OpenSsh, free_port, run, run_with_input};

/// Long enough for the client to finish; one still running is killed and fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// What goes through each stdio forward.
const STREAM_BYTES: usize = 256 * 1024;

/// `ssh -W TARGET` through the server.
fn stdio_forward(bastion: &Bastion, ssh: &Path, target: &str) -> Command {
    let mut command = bastion.ssh(ssh);
    command.args(["-W", target, "127.0.0.1"]);
    command
}

/// Runs `ssh -W target` with seeded input; the client must exit 0 having echoed it all,
/// and the server must have logged the channel to `logged` (the host and port as ssh
/// sent them) as accepted.
fn echoed(
    bastion: &Bastion,
    ssh: &Path,
    target: &str,
    logged: &str,
    seed: u64,
) -> Result<String, String> {
    let mut input = vec![0u8; STREAM_BYTES];
    XorShift(seed | 1).fill(&mut input);
    let out = run_with_input(
        &mut stdio_forward(bastion, ssh, target),
        Some(&input),
        CLIENT_TIMEOUT,
    );
    let note = check_echoed(&out, &input)?;
    let to = format!("to={logged} ");
    bastion.log_line(&["type=direct-tcpip", &to, "result=accepted"])?;
    Ok(note)
}

#[test]
fn names_are_looked_up_and_every_address_tried() {
    let Some(ssh) = OpenSsh::V10_0.ssh() else {
        return;
    };
    let echo = echo_service();
    let echo6 = echo_service_on(IpAddr::V6(Ipv6Addr::LOCALHOST));
    // Nothing listens here: the listener that held it is gone.
    let closed = free_port();
    let by_name = format!("localhost:{echo}");
    let by_address = format!("[::1]:{echo6}");
    let refusing = format!("localhost:{closed}");
    let extra = [
        "-v",
        "--permit-open",
        &by_name,
        "--permit-open",
        &by_address,
        "--permit-open",
        &refusing,
    ];
    let Some(bastion) = Bastion::start("serve-names", &extra) else {
        return;
    };
    let name = "ssh OpenSSH_10.0";
    let mut cells = Cells::new("destination names through gateway serve");

    let order: Vec<SocketAddr> = ("localhost", echo)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    let result = echoed(&bastion, &ssh, &by_name, &by_name, 0x5eed_0101)
        .map(|note| format!("{note}; localhost here is {order:?}"));
    cells.record(name, "-W localhost to an echo on 127.0.0.1 only", result);

    // ssh sends the address without its brackets.
    let sent = format!("::1:{echo6}");
    let result = echoed(&bastion, &ssh, &by_address, &sent, 0x5eed_0102);
    cells.record(name, "-W [::1] to an echo on ::1", result);

    let out = run(
        &mut stdio_forward(&bastion, &ssh, &refusing),
        CLIENT_TIMEOUT,
    );
    let stderr = out.stderr_text();
    let result = if out.timed_out || out.status.code() != Some(255) {
        Err(format!("expected exit 255: {}", brief(&out)))
    } else if !stderr.contains("channel 0: open failed: connect failed: Connection refused") {
        Err(format!("the client did not say why: {}", brief(&out)))
    } else {
        let to = format!("to={refusing} ");
        bastion
            .log_line(&["type=direct-tcpip", &to, "result=failed", "refused"])
            .and_then(|line| {
                // The server is still serving: a name works after the failure.
                echoed(&bastion, &ssh, &by_name, &by_name, 0x5eed_0103)?;
                let reason = line.find("reason=").map_or("", |i| &line[i..]);
                Ok(format!("exit 255, logged {reason}; a later channel works"))
            })
    };
    cells.record(
        name,
        "-W localhost to a closed port: CONNECT_FAILED",
        result,
    );
    cells.finish();
}
