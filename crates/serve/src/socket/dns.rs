//! `+UDNSRN` lookups through the host's resolver: getaddrinfo(3) for a name (tokio's
//! `lookup_host`), getnameinfo(3) for an address (`dns-lookup`, on the blocking pool).

use std::net::IpAddr;
use std::time::Duration;

use sealcell_modem::job::JobId;
use sealcell_modem::socket::{DnsQuery, SocketFailure};

use crate::Edge;

/// How long one lookup may take; then it fails as a name that does not resolve. Longer than
/// the engine's wait (`command::dns::LOOKUP_TIMEOUT`, 30 s), which decides what the host is
/// told (110); this only ends the task.
///
/// # Security
/// A resolver that never answers cannot hold the command (or this task) for ever.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(35);

/// Looks `query` up and reports the answer to the engine.
pub(super) async fn resolve(edge: Edge, job: JobId, query: DnsQuery) {
    // The test bench's latency, before the lookup.
    edge.latency().await;
    let answer = match tokio::time::timeout(LOOKUP_TIMEOUT, look_up(query)).await {
        Ok(answer) => answer,
        Err(_) => Err(SocketFailure::Dns),
    };
    edge.with_module(|m| m.dns_answered(job, answer));
}

async fn look_up(query: DnsQuery) -> Result<String, SocketFailure> {
    match query {
        DnsQuery::Name(name) => {
            let addrs: Vec<IpAddr> = super::resolve(&name, 0)
                .await?
                .iter()
                .map(|a| a.ip())
                .collect();
            first_address(&addrs)
                .map(|ip| ip.to_string())
                .ok_or(SocketFailure::Dns)
        }
        DnsQuery::Address(ip) => {
            match tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip)).await {
                Ok(Ok(name)) => Ok(name),
                Ok(Err(e)) => {
                    tracing::debug!(%ip, error = %e, "reverse lookup failed");
                    Err(SocketFailure::Dns)
                }
                Err(e) => {
                    tracing::error!(%ip, error = %e, "a reverse lookup failed to run");
                    Err(SocketFailure::Dns)
                }
            }
        }
    }
}

/// The address `+UDNSRN` answers: the first IPv4 one (the emulated context is IPv4), else
/// the first.
fn first_address(addrs: &[IpAddr]) -> Option<IpAddr> {
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn the_first_ipv4_address_wins_over_an_earlier_ipv6_one() {
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(first_address(&[v6, v4]), Some(v4));
        assert_eq!(first_address(&[v6]), Some(v6));
        assert_eq!(first_address(&[]), None);
    }
}
