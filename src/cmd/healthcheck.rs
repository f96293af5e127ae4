//! `darktrace-export healthcheck`: GET `/healthz` of the service on this host, for the
//! container's HEALTHCHECK (the image has no curl).
//!
//! Without `--url` it asks the port of `LISTEN_ADDR`, the setting the service itself was
//! started with, so the check follows the service to any port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The URL to probe: `--url` when given, else `/healthz` at `LISTEN_ADDR`, a wildcard
/// address meaning this host's loopback.
pub fn target(url: Option<&str>, listen_addr: Option<&str>) -> Result<String, String> {
    if let Some(url) = url {
        return Ok(url.to_owned());
    }
    let listen = listen_addr.unwrap_or(crate::config::DEFAULT_LISTEN_ADDR);
    let addr: SocketAddr = listen.trim().parse().map_err(|_| {
        format!("LISTEN_ADDR: '{listen}' is not an address:port; give --url instead")
    })?;
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(format!(
        "http://{}/healthz",
        SocketAddr::new(ip, addr.port())
    ))
}

/// Probes `url` once; `Err` says why it is unhealthy.
pub async fn probe(url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| format!("unhealthy: cannot build a client: {e}"))?;
    match client.get(url).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("unhealthy: {url} answered {}", response.status())),
        Err(error) => Err(format!("unhealthy: {url}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_of_listen_addr_is_probed_on_loopback() {
        assert_eq!(target(None, None).unwrap(), "http://127.0.0.1:8080/healthz");
        assert_eq!(
            target(None, Some("0.0.0.0:9090")).unwrap(),
            "http://127.0.0.1:9090/healthz"
        );
        assert_eq!(
            target(None, Some("[::]:9091")).unwrap(),
            "http://[::1]:9091/healthz"
        );
        assert_eq!(
            target(None, Some("10.1.2.3:7000")).unwrap(),
            "http://10.1.2.3:7000/healthz"
        );
        assert_eq!(
            target(Some("http://h:1/healthz"), Some("0.0.0.0:9")).unwrap(),
            "http://h:1/healthz"
        );
        assert!(
            target(None, Some("nine"))
                .unwrap_err()
                .contains("LISTEN_ADDR")
        );
    }
}
