//! Graceful stop of the real binary: on SIGTERM (what orchestrators send) and SIGINT, `roster
//! serve` stops accepting connections, lets every request it has accepted finish, and exits;
//! a request that does not finish within `--shutdown-grace` does not hold the process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Backend, fresh_database};

/// `roster serve` on free ports over `database_url`: the child, the SCIM address
/// (`127.0.0.1:PORT`) and the bootstrap SCIM token, read from what it prints.
fn serve(database_url: &str, grace_seconds: u64) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args([
            "serve",
            "--database-url",
            database_url,
            "--scim-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--shutdown-grace",
            &grace_seconds.to_string(),
        ])
        .env("ROSTER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run roster serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut addr, mut token) = (None, None);
    while addr.is_none() || token.is_none() {
        let line = lines
            .next()
            .expect("roster serve printed its secrets")
            .expect("stdout line");
        if let Some(url) = line.trim().strip_prefix("SCIM base URL:") {
            let url = url.trim();
            let rest = url.strip_prefix("http://").expect("http URL");
            addr = Some(rest.split('/').next().expect("host:port").to_owned());
        } else if let Some(t) = line.trim().strip_prefix("SCIM token:") {
            token = Some(t.trim().to_owned());
        }
    }
    // Keep reading what it prints, so that it never writes into a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr.expect("addr"), token.expect("token"))
}

/// Sends `signal` (e.g. `TERM`) to the child.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}");
}

/// Waits at most `limit` for the child to exit; returns whether it exited successfully.
fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.success();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("roster did not exit within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `POST /Users` whose headers and first half of the body are sent now; the rest is sent by
/// [`finish`]. Returns the connection and the rest of the body.
fn start_create(addr: &str, token: &str, user_name: &str) -> (TcpStream, Vec<u8>) {
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
    })
    .to_string()
    .into_bytes();
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).expect("write head");
    let half = body.len() / 2;
    conn.write_all(&body[..half]).expect("write half");
    conn.flush().expect("flush");
    (conn, body[half..].to_vec())
}

/// Sends the rest of the body and returns the response's status line.
fn finish(mut conn: TcpStream, rest: &[u8]) -> String {
    conn.write_all(rest).expect("write rest");
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the headers are complete (the status line is what matters).
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).expect("read response");
        assert!(
            n > 0,
            "the connection closed before a response: {response:?}"
        );
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn in_flight_requests_finish_on(backend: Backend, sig: &str) {
    let (_db, url) = fresh_database(backend);
    let (mut child, addr, token) = serve(&url, 30);
    let (conn, rest) = start_create(&addr, &token, "in-flight@example.com");
    // Let the server accept the connection and start reading the request.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, sig);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "{backend:?}: a new connection was accepted after SIG{sig}"
    );
    let status = finish(conn, &rest);
    assert!(
        status.starts_with("HTTP/1.1 201"),
        "{backend:?}: the request in flight at SIG{sig} was answered {status:?}"
    );
    assert!(
        wait_exit(&mut child, Duration::from_secs(20)),
        "{backend:?}: roster exited with a failure after SIG{sig}"
    );
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        in_flight_requests_finish_on(backend, "TERM");
    }
}

#[test]
fn sigint_lets_in_flight_requests_finish() {
    in_flight_requests_finish_on(Backend::Sqlite, "INT");
}

#[test]
fn a_request_that_never_finishes_does_not_outlast_the_grace_period() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (_db, url) = fresh_database(backend);
        let (mut child, addr, token) = serve(&url, 1);
        // Never completed.
        let (_conn, _rest) = start_create(&addr, &token, "stuck@example.com");
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        signal(&child, "TERM");
        wait_exit(&mut child, Duration::from_secs(15));
        assert!(
            sent.elapsed() >= Duration::from_millis(900),
            "{backend:?}: exited before the grace period, after {:?}",
            sent.elapsed()
        );
    }
}
