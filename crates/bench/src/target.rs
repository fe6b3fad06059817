//! Where the load goes: an `https://host:port` URL that must resolve to a
//! loopback address. The generator refuses anything else, so a typo cannot
//! aim load at another machine.

use anyhow::{Context, bail};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};

/// A loopback server to load.
#[derive(Clone, Debug)]
pub struct Target {
    /// The URL's host, used for SNI and certificate checks.
    pub host: String,
    pub addr: SocketAddr,
    /// `https://host:port`, no trailing slash.
    pub base: String,
}

impl Target {
    pub async fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .trim_end_matches('/')
            .strip_prefix("https://")
            .with_context(|| format!("{url:?} must start with https://"))?;
        if rest.contains('/') {
            bail!("{url:?} must have no path (just https://host:port)");
        }
        let (host, port) = rest
            .rsplit_once(':')
            .with_context(|| format!("{url:?} needs a port"))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("{port:?} is not a port"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addr = tokio::net::lookup_host((bare, port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        if !addr.ip().is_loopback() {
            bail!(
                "{url} resolves to {addr}, which is not loopback: the bench only loads local servers"
            );
        }
        Ok(Self {
            host: host.to_owned(),
            addr,
            base: format!("https://{rest}"),
        })
    }

    /// Opens a TCP connection. With `sources > 1` (IPv4 only) connection `i`
    /// leaves from 127.0.0.(2 + i % sources), so more than one source/port
    /// pair table is available for many connections.
    pub async fn connect(&self, i: usize, sources: usize) -> std::io::Result<TcpStream> {
        let stream = match (self.addr.ip(), sources) {
            (IpAddr::V4(_), n) if n > 1 => {
                let last = 2 + (i % n.min(250)) as u8;
                let socket = TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(Ipv4Addr::new(127, 0, 0, last).into(), 0))?;
                socket.connect(self.addr).await?
            }
            _ => TcpStream::connect(self.addr).await?,
        };
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_urls_are_accepted() {
        let target = Target::parse("https://127.0.0.1:8443/")
            .await
            .expect("loopback");
        assert_eq!(target.addr.port(), 8443);
        assert_eq!(target.base, "https://127.0.0.1:8443");
    }

    #[tokio::test]
    async fn other_hosts_are_refused() {
        let err = Target::parse("https://192.0.2.1:443")
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("not loopback"), "{err}");
        assert!(Target::parse("http://127.0.0.1:80").await.is_err());
        assert!(Target::parse("https://127.0.0.1:1/x").await.is_err());
    }
}
