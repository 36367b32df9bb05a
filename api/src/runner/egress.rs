//! Outbound internet for sandboxed runs (`RUNFLOW_RUNNER_EGRESS=public`): the worker's side of
//! the run's proxy.
//!
//! A run has no network but loopback. With `public`, `sandbox-init` listens on
//! 127.0.0.1:3128 inside the sandbox and forwards every connection to a Unix socket; this
//! module accepts on that socket and speaks just enough HTTP to be a `CONNECT` proxy (what
//! HTTPS clients use through `HTTPS_PROXY`). Plain-HTTP requests in absolute form
//! (`GET http://host/ HTTP/1.1`) are NOT supported: they get `501`.
//!
//! For each `CONNECT host:port` the proxy resolves `host` (time-limited), checks every
//! resolved address against [`refusal`] (loopback, private, link-local, CGNAT, unspecified,
//! multicast, broadcast, documentation and other special-purpose ranges, and every address of
//! this host's interfaces) and connects to a checked address itself (never to the name
//! again, so a DNS answer that changes between check and connect changes nothing). A
//! refused target gets `403` with the reason. The request head is bounded
//! ([`MAX_HEAD_BYTES`]), as are the time to send it, to resolve and to connect, and the
//! number of tunnels a run holds open at once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// Where `sandbox-init` listens for the proxy inside the sandbox.
pub const INSIDE_PROXY_ADDRESS: &str = "127.0.0.1:3128";
/// Largest request head (request line and headers) the proxy reads.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses of one name tried at most (each with [`CONNECT_TIMEOUT`]).
const MAX_ATTEMPTS: usize = 3;
/// Tunnels one run may hold open at once.
const MAX_TUNNELS: usize = 64;

/// Special-purpose ranges a run may never reach (IANA special-purpose address registries);
/// the first match names the reason, so narrower ranges come before the ranges holding them.
/// IPv4-mapped and NAT64 IPv6 addresses are checked as the IPv4 address they carry.
static REFUSED: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    [
        ("0.0.0.0/8", "unspecified (\"this network\")"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique local (ULA)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    ]
    .into_iter()
    .filter_map(|(net, why)| net.parse().ok().map(|net| (net, why)))
    .collect()
});

/// Why a run may not connect to `ip` (None: it may). `own` are this host's addresses.
pub fn refusal(ip: IpAddr, own: &[IpAddr]) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if let Some((_, why)) = REFUSED.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(why);
    }
    if own.contains(&ip) {
        return Some("an address of this host");
    }
    None
}

/// The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) address
/// stands for.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

/// The addresses of this host's interfaces (fails closed: an error refuses every target).
pub(crate) fn own_addresses() -> Result<Vec<IpAddr>, String> {
    let interfaces = nix::ifaddrs::getifaddrs().map_err(|e| format!("cannot list this host's addresses: {e}"))?;
    Ok(interfaces
        .filter_map(|interface| interface.address)
        .filter_map(|address| {
            address
                .as_sockaddr_in()
                .map(|a| IpAddr::V4(a.ip()))
                .or_else(|| address.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
        })
        .collect())
}

/// Accepts the run's proxy connections until aborted (with the run).
pub async fn serve(listener: UnixListener) {
    let slots = Arc::new(Semaphore::new(MAX_TUNNELS));
    loop {
        let Ok((mut inside, _)) = listener.accept().await else {
            return;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let _ = reply(&mut inside, 503, "too many open tunnels for this run").await;
            continue;
        };
        tokio::spawn(async move {
            let _permit = permit;
            tunnel(inside).await;
        });
    }
}

/// A refusal or failure, as the status and message the client gets.
struct Reply(u16, String);

async fn reply(stream: &mut UnixStream, status: u16, message: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "Connection established",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Gateway Timeout",
    };
    let head = if status == 200 {
        format!("HTTP/1.1 200 {reason}\r\n\r\n")
    } else {
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{message}\n",
            message.len() + 1
        )
    };
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await
}

async fn tunnel(mut inside: UnixStream) {
    match open(&mut inside).await {
        Ok((mut upstream, early)) => {
            if reply(&mut inside, 200, "").await.is_err() || upstream.write_all(&early).await.is_err() {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut inside, &mut upstream).await;
        }
        Err(Reply(status, message)) => {
            tracing::debug!(status, %message, "runner: egress proxy refused a request");
            let _ = reply(&mut inside, status, &message).await;
        }
    }
}

/// Reads the CONNECT request and connects to its (checked) target: the connection and the
/// bytes the client sent after the request head.
async fn open(inside: &mut UnixStream) -> Result<(TcpStream, Vec<u8>), Reply> {
    let (head, early) = tokio::time::timeout(HEAD_TIMEOUT, read_head(inside))
        .await
        .map_err(|_| Reply(408, "the request head did not arrive in time".into()))??;
    let (host, port) = target(&head)?;
    let resolved: Vec<SocketAddr> =
        tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| Reply(504, format!("resolving {host} timed out")))?
            .map_err(|e| Reply(502, format!("cannot resolve {host}: {e}")))?
            .collect();
    let own = own_addresses().map_err(|e| Reply(503, e))?;
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for address in resolved {
        match refusal(address.ip(), &own) {
            None => allowed.push(address),
            Some(why) => refused.push(format!("{} ({why})", address.ip())),
        }
    }
    if allowed.is_empty() {
        return Err(if refused.is_empty() {
            Reply(502, format!("{host} has no address"))
        } else {
            Reply(
                403,
                format!(
                    "runs may reach public internet addresses only: {host} resolves to {}",
                    refused.join(", ")
                ),
            )
        });
    }
    let mut last = String::new();
    for address in allowed.into_iter().take(MAX_ATTEMPTS) {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok((stream, early)),
            Ok(Err(e)) => last = format!("cannot connect to {address}: {e}"),
            Err(_) => last = format!("connecting to {address} timed out"),
        }
    }
    Err(Reply(502, last))
}

/// Reads up to the end of the request head (at most [`MAX_HEAD_BYTES`]).
async fn read_head(inside: &mut UnixStream) -> Result<(Vec<u8>, Vec<u8>), Reply> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let read = inside
            .read(&mut chunk)
            .await
            .map_err(|e| Reply(400, format!("cannot read the request: {e}")))?;
        if read == 0 {
            return Err(Reply(400, "the request ended before its head did".into()));
        }
        buffer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::Request::new(&mut headers).parse(&buffer) {
            Ok(httparse::Status::Complete(length)) if length <= MAX_HEAD_BYTES => {
                let early = buffer.split_off(length);
                return Ok((buffer, early));
            }
            Ok(_) if buffer.len() < MAX_HEAD_BYTES => {}
            Ok(_) | Err(httparse::Error::TooManyHeaders) => {
                return Err(Reply(
                    431,
                    format!("the request head is limited to {MAX_HEAD_BYTES} bytes and {MAX_HEADERS} headers"),
                ));
            }
            Err(e) => return Err(Reply(400, format!("not an HTTP request: {e}"))),
        }
    }
}

/// `host` and `port` of a complete `CONNECT host:port HTTP/1.x` head.
fn target(head: &[u8]) -> Result<(String, u16), Reply> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    request
        .parse(head)
        .map_err(|e| Reply(400, format!("not an HTTP request: {e}")))?;
    if request.method != Some("CONNECT") {
        return Err(Reply(
            501,
            "this proxy supports CONNECT only (HTTPS); plain-HTTP requests through it are not supported".into(),
        ));
    }
    let authority = request.path.unwrap_or_default();
    let bad = || Reply(400, format!("CONNECT needs host:port, got {authority:?}"));
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> Option<&'static str> {
        refusal(ip.parse().unwrap(), &[])
    }

    #[test]
    fn every_special_purpose_class_is_refused() {
        for (ip, class) in [
            ("127.0.0.1", "loopback"),
            ("127.1.2.3", "loopback"),
            ("::1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("fd00::1", "unique local"),
            ("fc12::1", "unique local"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.254", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("2001:db8::1", "documentation"),
            // Mapped and NAT64 forms are judged as the IPv4 address they carry.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
        ] {
            let why = refused(ip).unwrap_or_else(|| panic!("{ip} was allowed"));
            assert!(why.contains(class), "{ip}: {why}, expected {class}");
        }
    }

    #[test]
    fn public_addresses_are_allowed_without_connecting() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(refused(ip), None, "{ip}");
        }
    }

    #[test]
    fn the_hosts_own_addresses_are_refused() {
        let own: IpAddr = "93.184.215.14".parse().unwrap();
        assert_eq!(refusal(own, &[]), None);
        assert_eq!(refusal(own, &[own]), Some("an address of this host"));
        assert!(own_addresses().unwrap().iter().any(|ip| ip.is_loopback()));
    }

    #[test]
    fn the_table_parses_whole() {
        assert_eq!(REFUSED.len(), 29);
    }

    #[test]
    fn connect_targets() {
        assert_eq!(
            target(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").ok(),
            Some(("example.com".into(), 443))
        );
        assert_eq!(
            target(b"CONNECT [2606:4700::1]:443 HTTP/1.1\r\n\r\n").ok(),
            Some(("2606:4700::1".into(), 443))
        );
        assert_eq!(
            target(b"GET http://example.com/ HTTP/1.1\r\n\r\n").err().map(|r| r.0),
            Some(501)
        );
        assert_eq!(
            target(b"CONNECT example.com HTTP/1.1\r\n\r\n").err().map(|r| r.0),
            Some(400)
        );
        assert_eq!(target(b"CONNECT :443 HTTP/1.1\r\n\r\n").err().map(|r| r.0), Some(400));
    }
}
