//! The network probes against servers of the test's own on 127.0.0.1 (in the
//! test's network namespace: `run_network` with no namespace to enter).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use super::*;
use crate::model::{HttpGet, HttpHeader, HttpScheme};

/// A server that answers each of `answers` to one connection, in turn, and
/// hands back the requests it read.
fn serve(answers: Vec<Vec<u8>>) -> (u16, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        for answer in answers {
            let (mut s, _) = listener.accept().unwrap();
            seen.push(read_head(&mut s));
            let _ = s.write_all(&answer);
        }
        seen
    });
    (port, handle)
}

/// A request's head, as a server reads it.
fn read_head(s: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn http(port: u16, path: &str, headers: Vec<HttpHeader>) -> ProbeAction {
    ProbeAction::HttpGet(HttpGet {
        scheme: HttpScheme::Http,
        host: None,
        port,
        path: path.into(),
        headers,
    })
}

const SECOND: Duration = Duration::from_secs(1);

/// A network probe from this test's namespace (nothing to enter): its result.
fn net(action: &ProbeAction, timeout: Duration) -> Outcome {
    run_network(None, action, "127.0.0.1", timeout).expect("the probe has a result")
}

#[test]
fn an_http_probe_succeeds_on_2xx_and_3xx_and_fails_on_4xx_with_the_status() {
    let (port, server) = serve(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"HTTP/1.1 404 Not Found\r\n\r\n".to_vec(),
    ]);
    let probe = http(port, "/healthz", vec![]);
    assert_eq!(net(&probe, SECOND), Ok("ok".into()));
    assert_eq!(
        net(&probe, SECOND),
        Err("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(
        net(&probe, SECOND),
        Err("HTTP probe failed with statuscode: 404".into())
    );
    let seen = server.join().unwrap();
    assert!(
        seen[0].starts_with(&format!(
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kube-probe/{KUBE_VERSION}\r\n"
        )),
        "{}",
        seen[0]
    );
}

#[test]
fn an_http_probe_sends_the_probes_host_and_headers() {
    let (port, server) = serve(vec![b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()]);
    let probe = http(
        port,
        "ready",
        vec![
            HttpHeader {
                name: "Host".into(),
                value: "app.example".into(),
            },
            HttpHeader {
                name: "X-Probe".into(),
                value: "1".into(),
            },
        ],
    );
    assert_eq!(net(&probe, SECOND), Ok(String::new()));
    let seen = server.join().unwrap();
    assert!(
        seen[0].starts_with("GET /ready HTTP/1.1\r\nHost: app.example\r\n"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains("\r\nX-Probe: 1\r\n"), "{}", seen[0]);
}

#[test]
fn an_http_probe_follows_a_redirect_to_the_same_host_only() {
    let (port, server) = serve(vec![
        b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"HTTP/1.1 503 Unavailable\r\n\r\n".to_vec(),
    ]);
    assert_eq!(
        net(&http(port, "/", vec![]), SECOND),
        Err("HTTP probe failed with statuscode: 503".into())
    );
    let seen = server.join().unwrap();
    assert!(seen[1].starts_with("GET /next HTTP/1.1\r\n"), "{}", seen[1]);

    // Elsewhere: not followed; the redirect is the answer, a warning (success).
    let (port, server) = serve(vec![
        b"HTTP/1.1 301 Moved\r\nLocation: http://192.0.2.1/x\r\nContent-Length: 5\r\n\r\nmoved"
            .to_vec(),
    ]);
    assert_eq!(
        net(&http(port, "/", vec![]), SECOND),
        Ok("Probe terminated redirects, Response body: moved".into())
    );
    server.join().unwrap();
}

#[test]
fn an_http_probe_stops_after_ten_redirects() {
    let hop = b"HTTP/1.1 307 Again\r\nLocation: /loop\r\n\r\n".to_vec();
    let (port, server) = serve(vec![hop; 11]);
    let e = net(&http(port, "/", vec![]), Duration::from_secs(5)).unwrap_err();
    assert!(e.ends_with("stopped after 10 redirects"), "{e}");
    server.join().unwrap();
}

#[test]
fn an_http_probe_that_gets_no_answer_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepted (by the kernel's backlog) and never answered.
    let e = net(&http(port, "/", vec![]), Duration::from_millis(200)).unwrap_err();
    assert_eq!(
        e,
        format!(
            "Get \"http://127.0.0.1:{port}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )
    );
    drop(listener);
}

#[test]
fn an_endless_response_head_is_refused_and_a_body_is_read_only_to_its_cap() {
    let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 100 * 1024));
    let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'b', 50 * 1024));
    let (port, server) = serve(vec![endless, big]);
    let e = net(&http(port, "/", vec![]), SECOND).unwrap_err();
    assert!(e.ends_with("response head larger than 65536 bytes"), "{e}");
    let body = net(&http(port, "/", vec![]), SECOND).unwrap();
    assert_eq!(body.len(), 10 * 1024);
    server.join().unwrap();
}

#[test]
fn a_tcp_probe_succeeds_on_connect_and_fails_with_gos_message() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tcp = ProbeAction::TcpSocket { host: None, port };
    assert_eq!(net(&tcp, SECOND), Ok(String::new()));
    drop(listener);
    assert_eq!(
        net(&tcp, SECOND),
        Err(format!(
            "dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );
}

/// A TLS server with a self-signed certificate for `probe.invalid` (made once
/// with openssl; testdata/), answering one request with 200.
fn serve_tls() -> (u16, thread::JoinHandle<String>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(include_bytes!("testdata/cert.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("testdata/key.der").to_vec(),
    ));
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let head = read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
            .unwrap();
        s.flush().unwrap();
        s.conn.send_close_notify();
        let _ = s.flush();
        head
    });
    (port, handle)
}

#[test]
fn an_https_probe_does_not_verify_the_certificate() {
    // The certificate is self-signed and names another host: the kubelet's
    // probe client skips verification (InsecureSkipVerify).
    let (port, server) = serve_tls();
    let probe = ProbeAction::HttpGet(HttpGet {
        scheme: HttpScheme::Https,
        host: None,
        port,
        path: "/tls".into(),
        headers: vec![],
    });
    assert_eq!(net(&probe, Duration::from_secs(5)), Ok("secure".into()));
    assert!(server.join().unwrap().starts_with("GET /tls HTTP/1.1\r\n"));
}

#[test]
fn an_https_probe_of_a_plain_http_server_fails_with_a_tls_error() {
    let (port, server) = serve(vec![b"HTTP/1.1 200 OK\r\n\r\n".to_vec()]);
    let probe = ProbeAction::HttpGet(HttpGet {
        scheme: HttpScheme::Https,
        host: None,
        port,
        path: "/".into(),
        headers: vec![],
    });
    let e = net(&probe, SECOND).unwrap_err();
    assert!(
        e.starts_with(&format!("Get \"https://127.0.0.1:{port}/\": ")),
        "{e}"
    );
    let _ = server.join();
}

#[test]
fn a_response_head_with_bare_line_feeds_is_read() {
    // busybox httpd relays a CGI script's `\n` line ends as they are; Go's
    // client accepts them (RFC 9112 section 2.2), so the kubelet does too.
    let (port, server) = serve(vec![
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\n\nok\n".to_vec(),
        b"HTTP/1.1 302 Found\nLocation: /x\n\n".to_vec(),
        b"HTTP/1.1 503 No\r\n\r\n".to_vec(),
    ]);
    let probe = http(port, "/", vec![]);
    assert_eq!(net(&probe, SECOND), Ok("ok\n".into()));
    assert_eq!(
        net(&probe, SECOND),
        Err("HTTP probe failed with statuscode: 503".into())
    );
    let seen = server.join().unwrap();
    assert!(seen[2].starts_with("GET /x HTTP/1.1\r\n"), "{}", seen[2]);
}

/// A gRPC health server of the test's own (h2 on 127.0.0.1): `answer` is the
/// ServingStatus it gives, or `None` for a server without the health service
/// (UNIMPLEMENTED, as a trailers-only response). Hands back the request paths
/// and user agents it saw.
fn serve_grpc(answer: Option<u8>) -> (u16, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = h2::server::handshake(tcp).await.unwrap();
            let mut seen = Vec::new();
            if let Some(request) = conn.accept().await {
                let (request, mut respond) = request.unwrap();
                seen.push(format!(
                    "{} {}",
                    request.uri().path(),
                    request.headers()["user-agent"].to_str().unwrap()
                ));
                let mut body = request.into_body();
                while let Some(chunk) = body.data().await {
                    let _ = chunk.unwrap();
                }
                let ok = ::http::Response::builder()
                    .status(200)
                    .header("content-type", "application/grpc");
                match answer {
                    Some(status) => {
                        let mut send = respond.send_response(ok.body(()).unwrap(), false).unwrap();
                        send.send_data(
                            bytes::Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]),
                            false,
                        )
                        .unwrap();
                        let mut trailers = ::http::HeaderMap::new();
                        trailers.insert("grpc-status", "0".parse().unwrap());
                        send.send_trailers(trailers).unwrap();
                    }
                    None => {
                        let response = ok
                            .header("grpc-status", "12")
                            .header("grpc-message", "unknown%20service%20grpc.health.v1.Health")
                            .body(())
                            .unwrap();
                        respond.send_response(response, true).unwrap();
                    }
                }
                // Let the client read it all before the connection goes.
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.accept()).await;
            }
            seen
        })
    });
    (port, handle)
}

fn grpc(port: u16) -> ProbeAction {
    ProbeAction::Grpc {
        port,
        service: None,
    }
}

#[test]
fn a_grpc_probe_succeeds_on_serving_and_says_what_else_it_got() {
    let (port, server) = serve_grpc(Some(1));
    assert_eq!(net(&grpc(port), SECOND), Ok(String::new()));
    assert_eq!(
        server.join().unwrap(),
        [format!(
            "/grpc.health.v1.Health/Check kube-probe/{KUBE_VERSION}"
        )]
    );
    let (port, server) = serve_grpc(Some(2));
    assert_eq!(
        net(&grpc(port), SECOND),
        Err("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
    server.join().unwrap();
    let (port, server) = serve_grpc(None);
    assert_eq!(
        net(&grpc(port), SECOND),
        Err("this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health".into())
    );
    server.join().unwrap();
}

#[test]
fn a_grpc_probe_with_no_server_fails_as_a_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = net(&grpc(port), SECOND).unwrap_err();
    assert_eq!(
        e,
        format!(
            "timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
}

#[test]
fn a_grpc_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let e = net(&grpc(port), Duration::from_millis(300)).unwrap_err();
    assert_eq!(e, "timeout: health rpc did not complete within 300ms");
    drop(listener);
}

#[test]
fn an_https_probe_of_a_server_that_never_answers_the_handshake_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = ProbeAction::HttpGet(HttpGet {
        scheme: HttpScheme::Https,
        host: None,
        port,
        path: "/".into(),
        headers: vec![],
    });
    let began = std::time::Instant::now();
    let e = net(&probe, Duration::from_millis(300)).unwrap_err();
    assert!(
        e.ends_with("context deadline exceeded (Client.Timeout exceeded while awaiting headers)"),
        "{e}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    drop(listener);
}

#[test]
fn an_http_hook_waiting_for_an_answer_gives_up_when_cancelled() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let get = HttpGet {
        scheme: HttpScheme::Http,
        host: None,
        port,
        path: "/".into(),
        headers: vec![],
    };
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cancel.clone();
    let hook = thread::spawn(move || run_hook(None, &get, "127.0.0.1", NO_TIMEOUT, &flag));
    thread::sleep(Duration::from_millis(200));
    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = hook.join().unwrap().unwrap().unwrap_err();
    assert!(e.ends_with("cancelled: the container's run ended"), "{e}");
    drop(listener);
}
