//! Outbound HTTP as a port: webhook deliveries go through here, with a per-request timeout and a
//! guard against server-side request forgery.
//!
//! The guard refuses loopback, private, link-local, shared (CGNAT), unique-local, multicast,
//! unspecified and cloud metadata addresses unless the operator allows them. It applies to IP
//! literals before connecting and to every address a host name resolves to (the connection only
//! goes to addresses that passed), so DNS rebinding cannot slip a private address in. Redirects are
//! not followed, and no proxy from the environment is used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use url::{Host, Url};

/// Which destination addresses outbound requests may reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Allow 127.0.0.0/8 and ::1 (the local runner allows them so that local testing works).
    pub allow_loopback: bool,
    /// Allow every private and special-purpose address as well (operator's choice).
    pub allow_private: bool,
}

impl AddressPolicy {
    /// Why `ip` may not be reached, or `None` when it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if ip.is_loopback() {
            return (!self.allow_loopback && !self.allow_private).then_some("loopback address");
        }
        if self.allow_private {
            return None;
        }
        match ip {
            IpAddr::V4(v4) => refusal_v4(v4),
            IpAddr::V6(v6) => refusal_v6(v6),
        }
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(169, 254, 170, 2) {
        Some("cloud metadata address")
    } else if ip.is_private() {
        Some("private address")
    } else if ip.is_link_local() {
        Some("link-local address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared address space (CGNAT)")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("multicast, broadcast or reserved address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignment address")
    } else if (o[0] == 198 && (o[1] & 0xfe) == 18) || ip.is_documentation() {
        Some("benchmarking or documentation address")
    } else {
        None
    }
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("cloud metadata address")
    } else if ip.is_unspecified() {
        Some("unspecified address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("unique local address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        Some("NAT64 address")
    } else if s[0] == 0x2001 && s[1] == 0xdb8 {
        Some("documentation address")
    } else {
        None
    }
}

/// One outbound POST.
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    /// Where to.
    pub url: Url,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// The whole request, connection included, must finish within this.
    pub timeout: Duration,
}

/// What the receiver answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundResponse {
    /// HTTP status.
    pub status: u16,
    /// The start of the response body (for traces and confirmation rules).
    pub body: String,
    /// How long the request took.
    pub elapsed: Duration,
}

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The address policy refused the destination.
    #[error("destination refused: {0}")]
    Refused(String),
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connection or protocol failure.
    #[error("request failed: {0}")]
    Failed(String),
}

/// Outbound HTTP.
#[async_trait]
pub trait Outbound: Send + Sync {
    /// POSTs a request and returns the answer, whatever its status.
    async fn post(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError>;
}

/// How much of a response body is kept.
const BODY_SNIPPET_BYTES: usize = 2048;

/// The real client: reqwest with the address guard in its resolver.
#[derive(Clone)]
pub struct HttpOutbound {
    client: reqwest::Client,
    policy: AddressPolicy,
}

impl HttpOutbound {
    /// A client enforcing `policy`.
    pub fn new(policy: AddressPolicy) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver { policy })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, policy })
    }

    /// Checks an IP-literal host against the policy (names are checked by the resolver).
    fn check_literal(&self, url: &Url) -> Result<(), OutboundError> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(OutboundError::Refused("URL has no host".into())),
        };
        match self.policy.refusal(ip) {
            Some(why) => Err(OutboundError::Refused(format!("{ip}: {why}"))),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Outbound for HttpOutbound {
    async fn post(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        self.check_literal(&request.url)?;
        let started = Instant::now();
        let mut builder = self.client.post(request.url).timeout(request.timeout).body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let result = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        match result {
            Ok((status, body)) => {
                let end = body.len().min(BODY_SNIPPET_BYTES);
                let body = String::from_utf8_lossy(&body[..end]).into_owned();
                Ok(OutboundResponse { status, body, elapsed: started.elapsed() })
            }
            Err(e) if e.is_timeout() => Err(OutboundError::Timeout(request.timeout)),
            Err(e) => Err(classify(e)),
        }
    }
}

/// Turns a reqwest error into the port's error, keeping the guard's refusal recognisable.
fn classify(e: reqwest::Error) -> OutboundError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<RefusedAddress>() {
            return OutboundError::Refused(refused.0.clone());
        }
        text = format!("{text}: {s}");
        source = s.source();
    }
    OutboundError::Failed(text)
}

/// The resolver's refusal, recognised again in [`classify`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RefusedAddress(String);

/// Resolves names with the system resolver and drops addresses the policy refuses.
struct GuardedResolver {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.refusal(addr.ip()) {
                    Some(why) => {
                        refused = Some(format!("{host} resolves to {}: {why}", addr.ip()));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| format!("{host} has no address"));
                return Err(Box::new(RefusedAddress(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Shares one client between engine parts.
pub fn shared(policy: AddressPolicy) -> anyhow::Result<Arc<dyn Outbound>> {
    Ok(Arc::new(HttpOutbound::new(policy)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: AddressPolicy, ip: &str) -> bool {
        policy.refusal(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn default_policy_refuses_internal_addresses_and_allows_public_ones() {
        let p = AddressPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(refused(p, ip), "{ip} should be refused");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!refused(p, ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn loopback_allowance_covers_loopback_only() {
        let p = AddressPolicy { allow_loopback: true, allow_private: false };
        assert!(!refused(p, "127.0.0.1"));
        assert!(!refused(p, "::1"));
        assert!(refused(p, "10.0.0.1"));
        assert!(refused(p, "169.254.169.254"));
    }

    #[test]
    fn private_allowance_covers_everything() {
        let p = AddressPolicy { allow_loopback: false, allow_private: true };
        for ip in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "fc00::1"] {
            assert!(!refused(p, ip), "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn guard_refuses_literal_and_resolved_loopback() {
        let out = HttpOutbound::new(AddressPolicy::default()).unwrap();
        for url in ["http://127.0.0.1:9/x", "http://localhost:9/x"] {
            let req = OutboundRequest {
                url: url.parse().unwrap(),
                headers: vec![],
                body: Bytes::new(),
                timeout: Duration::from_secs(2),
            };
            let err = out.post(req).await.unwrap_err();
            assert!(matches!(err, OutboundError::Refused(_)), "{url}: {err}");
        }
    }
}
