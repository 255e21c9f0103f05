//! A `grpc` probe: one `grpc.health.v1.Health/Check` call over cleartext HTTP/2
//! (the kubelet dials with insecure credentials), worded as the kubelet's
//! `pkg/probe/grpc`: SERVING is a success; any other status, an error status or
//! no connection within the timeout is a failure.

use std::time::{Duration, Instant};

use super::{KUBE_VERSION, Outcome, Resolved, dial, join_host_port};

/// A health response is a few bytes; more than this is not one.
const MAX_RESPONSE: usize = 64 * 1024;

/// Checks `service` ("" for the server as a whole) at `addr` (host:port) before
/// `timeout` ends.
pub fn check(names: &Resolved, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = &join_host_port(&names.host, port);
    let deadline = crate::teardown::far_after(Instant::now(), timeout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("error: health rpc probe failed: {e}"))?;
    // Dialled here, in the thread's network namespace; handed to the runtime.
    let tcp = dial(names, port, deadline).map_err(|e| {
        format!("timeout: failed to connect service {addr:?} within {timeout:?}: {e}")
    })?;
    runtime.block_on(async {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, call(tcp, addr, service)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "timeout: health rpc did not complete within {timeout:?}"
            )),
        }
    })
}

/// gRPC status codes the kubelet tells apart.
const UNIMPLEMENTED: u32 = 12;
const DEADLINE_EXCEEDED: u32 = 4;

async fn call(tcp: std::net::TcpStream, authority: &str, service: &str) -> Outcome {
    let failed = |e: &dyn std::fmt::Display| format!("error: health rpc probe failed: {e}");
    tcp.set_nonblocking(true).map_err(|e| failed(&e))?;
    let tcp = tokio::net::TcpStream::from_std(tcp).map_err(|e| failed(&e))?;
    let (client, connection) = h2::client::handshake(tcp).await.map_err(|e| failed(&e))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = exchange(client, authority, service).await.map_err(|e| match e {
        Failure::Status(code, message) if code == UNIMPLEMENTED => format!(
            "this server does not implement the grpc health protocol (grpc.health.v1.Health): {message}"
        ),
        Failure::Status(code, message) if code == DEADLINE_EXCEEDED => {
            format!("timeout: health rpc did not complete: {message}")
        }
        Failure::Status(code, message) => format!(
            "error: health rpc probe failed: rpc error: code = {} desc = {message}",
            code_name(code)
        ),
        Failure::Other(e) => failed(&e),
    });
    driver.abort();
    let serving = result?;
    match serving {
        1 => Ok(String::new()),
        status => Err(format!(
            "service unhealthy (responded with {:?})",
            status_name(status)
        )),
    }
}

enum Failure {
    /// A gRPC status other than OK, with its message.
    Status(u32, String),
    Other(String),
}

/// The call; the response's ServingStatus.
async fn exchange(
    mut client: h2::client::SendRequest<bytes::Bytes>,
    authority: &str,
    service: &str,
) -> Result<u64, Failure> {
    let other = |e: &dyn std::fmt::Display| Failure::Other(e.to_string());
    client = client.ready().await.map_err(|e| other(&e))?;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{authority}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", format!("kube-probe/{KUBE_VERSION}"))
        .body(())
        .map_err(|e| other(&e))?;
    let (response, mut send) = client.send_request(request, false).map_err(|e| other(&e))?;
    send.send_data(bytes::Bytes::from(request_message(service)), true)
        .map_err(|e| other(&e))?;
    let response = response.await.map_err(|e| other(&e))?;
    let (head, mut body) = response.into_parts();
    if head.status != http::StatusCode::OK {
        return Err(Failure::Other(format!(
            "unexpected HTTP status code received from server: {}",
            head.status.as_u16()
        )));
    }
    // A trailers-only response carries its status in the headers.
    if let Some(status) = grpc_status(&head.headers) {
        return Err(status);
    }
    let mut message = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| other(&e))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if message.len() + chunk.len() > MAX_RESPONSE {
            return Err(Failure::Other(format!(
                "response larger than {MAX_RESPONSE} bytes"
            )));
        }
        message.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.map_err(|e| other(&e))?;
    match trailers.as_ref().and_then(grpc_status) {
        Some(status) => return Err(status),
        None if trailers.is_none() => {
            return Err(Failure::Other("the server sent no grpc-status".into()));
        }
        None => {}
    }
    serving_status(&message).ok_or_else(|| Failure::Other("malformed HealthCheckResponse".into()))
}

/// `grpc-status` and `grpc-message` of a header block, when the status is not OK.
fn grpc_status(headers: &http::HeaderMap) -> Option<Failure> {
    let code: u32 = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if code == 0 {
        return None;
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some(Failure::Status(code, message))
}

/// `grpc-message` is percent-encoded (the gRPC HTTP/2 protocol spec).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'%'
            && let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A length-prefixed gRPC message holding `HealthCheckRequest { service }`.
fn request_message(service: &str) -> Vec<u8> {
    let mut proto = Vec::new();
    if !service.is_empty() {
        proto.push(0x0a); // field 1, length-delimited
        varint(service.len() as u64, &mut proto);
        proto.extend_from_slice(service.as_bytes());
    }
    let mut out = vec![0u8]; // not compressed
    out.extend_from_slice(&(proto.len() as u32).to_be_bytes());
    out.extend_from_slice(&proto);
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The `status` (field 1) of the length-prefixed `HealthCheckResponse` in
/// `message`; 0 (UNKNOWN) when the field is absent, as protobuf defaults it.
fn serving_status(message: &[u8]) -> Option<u64> {
    if message.len() < 5 || message[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes(message[1..5].try_into().ok()?) as usize;
    let proto = message.get(5..5 + len)?;
    let mut at = 0;
    let mut status = 0;
    while at < proto.len() {
        let key = read_varint(proto, &mut at)?;
        match key & 7 {
            0 => {
                let v = read_varint(proto, &mut at)?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            2 => {
                let n = read_varint(proto, &mut at)? as usize;
                at = at.checked_add(n).filter(|&e| e <= proto.len())?;
            }
            5 => at += 4,
            1 => at += 8,
            _ => return None,
        }
    }
    Some(status)
}

fn status_name(status: u64) -> &'static str {
    match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNRECOGNIZED",
    }
}

fn code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(code as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("Code({code})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_length_prefixed_health_check_request() {
        assert_eq!(request_message(""), [0, 0, 0, 0, 0]);
        assert_eq!(request_message("db"), [0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']);
    }

    #[test]
    fn a_health_check_response_is_decoded_with_protobufs_defaults() {
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(serving_status(&[0, 0, 0, 0, 0]), Some(0));
        // An unknown field first is skipped.
        assert_eq!(
            serving_status(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 2]),
            Some(2)
        );
        assert_eq!(serving_status(&[0, 0, 0, 0, 9, 0x08]), None);
        assert_eq!(serving_status(&[1, 0, 0, 0, 0]), None);
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decode("no%20such%20service"), "no such service");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
