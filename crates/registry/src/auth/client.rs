//! The client's address: the socket's peer, or, when the peer is a trusted proxy, the
//! nearest untrusted address in `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::app::AppState;
use crate::problem::ApiError;

/// Proxies whose `X-Forwarded-For` the registry believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks, such as
    /// `10.0.0.5, 192.168.0.0/16`. An empty list trusts no proxy.
    pub fn parse(list: &str) -> anyhow::Result<TrustedProxies> {
        let mut networks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let network = match item.parse::<IpNet>() {
                Ok(network) => network,
                Err(_) => IpNet::from(item.parse::<IpAddr>().with_context(|| {
                    format!("invalid trusted proxy `{item}`: use an IP address or a CIDR network such as 10.0.0.0/8")
                })?),
            };
            networks.push(network);
        }
        Ok(TrustedProxies(networks))
    }

    fn contains(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&address))
    }

    /// Determines the client's address. From a trusted peer, `X-Forwarded-For` is read
    /// from the right (the hop nearest to the registry) and trusted proxies are skipped,
    /// so the first untrusted address is the client. An unparsable entry stops the walk
    /// at the last trusted hop, because nothing left of it can be believed.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for entry in forwarded.iter().rev() {
            let Some(address) = forwarded_address(entry) else { break };
            client = canonical(address);
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// Reads one `X-Forwarded-For` entry: an address, or an address with a port
/// (`203.0.113.7:443`, `[2001:db8::1]:443`) as some proxies write it.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

/// Writes an IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) as plain IPv4, so one
/// client counts as one address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

/// The client's address of a request, per [`TrustedProxies::client_address`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<ClientAddress, ApiError> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "the request has no peer address: serve the router with connect info"
            )));
        };
        Ok(ClientAddress(app.auth.config.trusted_proxies.client_address(peer.ip(), &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_ignores_header() {
        let proxies = TrustedProxies::parse("").unwrap();
        assert_eq!(proxies.client_address(ip("198.51.100.7"), &headers(&["203.0.113.9"])), ip("198.51.100.7"));
    }

    #[test]
    fn trusted_peer_uses_nearest_untrusted_entry() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let forwarded = headers(&["203.0.113.1, 203.0.113.2", "10.1.2.3"]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &forwarded), ip("203.0.113.2"));
    }

    #[test]
    fn trusted_peer_without_header_is_client() {
        let proxies = TrustedProxies::parse("127.0.0.1").unwrap();
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"));
    }

    #[test]
    fn garbage_entry_stops_at_last_trusted_hop() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let forwarded = headers(&["203.0.113.1, not-an-address, 10.1.2.3"]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &forwarded), ip("10.1.2.3"));
    }

    #[test]
    fn entries_with_ports_read() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let forwarded = headers(&["203.0.113.1, 203.0.113.9:443, 10.1.2.3:8080"]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &forwarded), ip("203.0.113.9"));
        let forwarded = headers(&["[2001:db8::1]:8443"]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &forwarded), ip("2001:db8::1"));
    }

    #[test]
    fn mapped_ipv4_peer_canonical() {
        let proxies = TrustedProxies::parse("127.0.0.1").unwrap();
        assert_eq!(proxies.client_address(ip("::ffff:127.0.0.1"), &headers(&["203.0.113.4"])), ip("203.0.113.4"));
    }

    #[test]
    fn invalid_proxy_rejected() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.example").is_err());
    }
}
