//! Where a webhook may be sent: `http(s)` URLs whose every resolved address is public.
//!
//! Loopback, private, link-local and the other special-purpose ranges (the same table as the
//! runs' egress proxy, [`crate::runner::egress::refusal`]) and this host's own addresses are
//! refused unless `RUNFLOW_WEBHOOK_ALLOW_PRIVATE=true`. The check runs when an endpoint is
//! saved and again before every call, on the addresses the call then connects to (never on a
//! name resolved a second time), so a DNS answer that changes after the save (DNS rebinding)
//! cannot reach an internal address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

use crate::error::{Error, Result};

/// Longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed, syntactically acceptable target.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: Url,
    pub host: String,
    pub port: u16,
}

/// Parses and checks the shape of a webhook URL (not its addresses).
pub fn parse(url: &str) -> Result<Target> {
    if url.len() > MAX_URL_BYTES {
        return Err(Error::bad_input(format!("`url` must be at most {MAX_URL_BYTES} bytes")));
    }
    let parsed = Url::parse(url).map_err(|e| Error::bad_input(format!("`url` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::bad_input("`url` must be an http:// or https:// URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::bad_input(
            "`url` must not contain a user name or password; authenticate the receiver with the signature",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(Error::bad_input("`url` must not contain a fragment (`#...`)"));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .ok_or_else(|| Error::bad_input("`url` must name a host"))?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| Error::bad_input("`url` has no port"))?;
    Ok(Target {
        url: parsed,
        host,
        port,
    })
}

/// Why `ip` may not be called (None: it may).
pub fn refusal(ip: IpAddr, own: &[IpAddr]) -> Option<&'static str> {
    crate::runner::egress::refusal(ip, own)
}

/// The addresses of `target` a call may connect to: all of them, or an error naming the first
/// refused one. `allow_private` skips the address check (name resolution still happens).
pub async fn resolve(target: &Target, allow_private: bool) -> Result<Vec<SocketAddr>> {
    let addresses: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => return Err(Error::bad_input(format!("cannot resolve {}: {e}", target.host))),
                Err(_) => return Err(Error::bad_input(format!("resolving {} timed out", target.host))),
            }
        }
    };
    if addresses.is_empty() {
        return Err(Error::bad_input(format!("{} has no address", target.host)));
    }
    if !allow_private {
        let own = crate::runner::egress::own_addresses().map_err(Error::bad_input)?;
        for address in &addresses {
            if let Some(why) = refusal(address.ip(), &own) {
                return Err(Error::bad_input(format!(
                    "webhook target {} resolves to {} ({why}): refused; set RUNFLOW_WEBHOOK_ALLOW_PRIVATE=true \
                     to allow private addresses",
                    target.host,
                    address.ip()
                )));
            }
        }
    }
    Ok(addresses)
}

/// The check made when an endpoint is saved: the URL's shape and, when the name resolves now,
/// its addresses. (A name that does not resolve yet is accepted: every call checks again.)
pub async fn check_on_save(url: &str, allow_private: bool) -> Result<Target> {
    let target = parse(url)?;
    match resolve(&target, allow_private).await {
        Ok(_) => Ok(target),
        Err(error) if error.to_string().contains("refused") => Err(error),
        Err(_) => Ok(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(parse("https://hooks.example.com/a?b=c").is_ok());
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "http://",
            "not a url",
            "https://example.com/#frag",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES))).is_err());
    }

    #[tokio::test]
    async fn private_literals_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:192.168.0.1]/",
        ] {
            let target = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let error = resolve(&target, false)
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("refused"), "{url}: {error}");
            assert!(resolve(&target, true).await.is_ok(), "{url} allowed");
        }
        let public = parse("http://93.184.215.14/").unwrap_or_else(|e| panic!("{e}"));
        assert!(resolve(&public, false).await.is_ok());
    }

    #[tokio::test]
    async fn names_are_checked_on_their_resolved_addresses() {
        let target = parse("http://localhost:9/").unwrap_or_else(|e| panic!("{e}"));
        let error = resolve(&target, false)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("loopback"), "{error}");
    }
}
