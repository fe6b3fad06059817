//! Where a webhook may be sent: the SSRF defence.
//!
//! A target URL is parsed strictly ([`TargetUrl`]), its host resolved here
//! (never by the HTTP client), and every address the name resolves to is
//! classified ([`classify`]). Loopback, private, link-local, CGNAT,
//! unique-local, multicast, unspecified, documentation, reserved and cloud
//! metadata addresses are refused, also when they hide inside an IPv6 form
//! (IPv4-mapped, IPv4-compatible, NAT64, 6to4). The caller then connects to
//! exactly the address that was checked, so a second resolution cannot
//! swap it. The operator's [`AllowList`] is the only way round the refusal
//! (for tests against a loopback receiver); plain `http` is accepted only
//! for allow-listed targets.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address may not be called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    Metadata,
    SharedAddressSpace,
    UniqueLocal,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    Reserved,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "an unspecified address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private (RFC 1918) address",
            Self::LinkLocal => "a link-local address",
            Self::Metadata => "a cloud metadata address",
            Self::SharedAddressSpace => "a carrier-grade NAT (RFC 6598) address",
            Self::UniqueLocal => "a unique-local IPv6 address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Reserved => "a reserved or special-purpose address",
        }
    }
}

/// Addresses cloud providers serve instance metadata (and credentials) on.
const METADATA: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    const RULES: [([u8; 4], u32, Refusal); 16] = [
        ([0, 0, 0, 0], 8, Refusal::Unspecified),
        ([10, 0, 0, 0], 8, Refusal::Private),
        ([100, 64, 0, 0], 10, Refusal::SharedAddressSpace),
        ([127, 0, 0, 0], 8, Refusal::Loopback),
        ([169, 254, 0, 0], 16, Refusal::LinkLocal),
        ([172, 16, 0, 0], 12, Refusal::Private),
        ([192, 0, 0, 0], 24, Refusal::Reserved),
        ([192, 0, 2, 0], 24, Refusal::Documentation),
        ([192, 88, 99, 0], 24, Refusal::Reserved),
        ([192, 168, 0, 0], 16, Refusal::Private),
        ([198, 18, 0, 0], 15, Refusal::Benchmarking),
        ([198, 51, 100, 0], 24, Refusal::Documentation),
        ([203, 0, 113, 0], 24, Refusal::Documentation),
        ([224, 0, 0, 0], 4, Refusal::Multicast),
        ([255, 255, 255, 255], 32, Refusal::Broadcast),
        ([240, 0, 0, 0], 4, Refusal::Reserved),
    ];
    RULES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// The IPv4 address an IPv6 form carries, for the forms that reach an
/// IPv4 host: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0, 0, 0, 0, 0, 0, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return Some(low);
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    if ip.is_unspecified() {
        return Some(Refusal::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    if let Some(v4) = embedded_v4(ip) {
        // `::` and `::1` were handled above; any other IPv4-compatible or
        // mapped form is judged by the IPv4 host it reaches.
        return classify(IpAddr::V4(v4));
    }
    const RULES: [([u16; 8], u32, Refusal); 10] = [
        ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, Refusal::Reserved),
        ([0x0064, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Refusal::Reserved),
        (
            [0x2001, 0x0db8, 0, 0, 0, 0, 0, 0],
            32,
            Refusal::Documentation,
        ),
        // IETF protocol assignments: Teredo (which hides an IPv4 host),
        // benchmarking, ORCHID and others.
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Refusal::Reserved),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Refusal::Documentation),
        ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Refusal::Reserved),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Refusal::UniqueLocal),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Refusal::LinkLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Refusal::Reserved),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Refusal::Multicast),
    ];
    RULES
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// Why `ip` may not be called, or `None` when it is a public unicast
/// address. Metadata addresses are named as such before their range.
pub fn classify(ip: IpAddr) -> Option<Refusal> {
    if METADATA.contains(&ip) {
        return Some(Refusal::Metadata);
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6)
                && METADATA.contains(&IpAddr::V4(v4))
            {
                return Some(Refusal::Metadata);
            }
            classify_v6(v6)
        }
    }
}

/// Networks the operator allows despite [`classify`] (config
/// `webhooks.allow_targets`), e.g. `127.0.0.1/32` for a test receiver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// Parses CIDR networks (`127.0.0.1/32`, `::1/128`) or bare addresses.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        let mut nets = Vec::with_capacity(items.len());
        for item in items {
            let text = item.as_ref().trim();
            let net = match text.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match text.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "{text:?} is not a network like 127.0.0.1/32 or ::1/128"
                        ));
                    }
                },
            };
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether one resolved address may be called, and why not. Metadata
/// addresses are refused even when allow-listed: no test needs them.
pub fn check_address(ip: IpAddr, allow: &AllowList) -> Result<(), Refusal> {
    let why = classify(ip);
    if why == Some(Refusal::Metadata) {
        return Err(Refusal::Metadata);
    }
    if allow.contains(ip) {
        return Ok(());
    }
    why.map_or(Ok(()), Err)
}

/// A target URL, parsed strictly: `https` (or `http`), a host, an optional
/// port, a path and query; no user name or password, no fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUrl {
    pub https: bool,
    /// As written in the URL (IPv6 literals keep their brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

/// The longest target URL accepted.
pub const MAX_URL_LEN: usize = 2048;

impl TargetUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_URL_LEN {
            return Err(format!("url is longer than {MAX_URL_LEN} characters"));
        }
        if !text.chars().all(|c| c.is_ascii_graphic()) {
            return Err("url must be printable ASCII without spaces".into());
        }
        if text.contains('#') {
            return Err("url must not have a fragment".into());
        }
        let uri: http::Uri = text
            .parse()
            .map_err(|_| "url is not an absolute URL like https://hooks.example.com/x")?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(
                    "url must start with https:// (or http:// for allow-listed test targets)"
                        .into(),
                );
            }
        };
        let authority = uri.authority().ok_or("url has no host")?;
        if authority.as_str().contains('@') {
            return Err("url must not carry a user name or password".into());
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err("url has no host".into());
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        if port == 0 {
            return Err("url port must be 1 to 65535".into());
        }
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        Ok(Self {
            https,
            host,
            port,
            path,
        })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host without IPv6 brackets, for TLS server names.
    pub fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// A `Location` header of a redirect, relative to this URL.
    pub fn join(&self, location: &str) -> Result<Self, String> {
        if location.starts_with("//") {
            let scheme = if self.https { "https:" } else { "http:" };
            return Self::parse(&format!("{scheme}{location}"));
        }
        if location.starts_with('/') {
            let scheme = if self.https { "https" } else { "http" };
            return Self::parse(&format!("{scheme}://{}{location}", self.authority()));
        }
        Self::parse(location)
    }
}

/// Why a target was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("{0}")]
    BadUrl(String),
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
    #[error("{host} resolves to {ip}, {}; webhooks may only call public addresses", .why.as_str())]
    Refused {
        host: String,
        ip: IpAddr,
        why: Refusal,
    },
    #[error("http:// is only allowed for targets the operator allow-listed; use https://")]
    PlainHttp,
}

/// Resolves the URL's host and checks every address it resolves to; all
/// must pass (a name that also points inward is refused). Returns the
/// checked addresses to connect to, in resolver order.
pub async fn resolve_checked(
    url: &TargetUrl,
    allow: &AllowList,
) -> Result<Vec<SocketAddr>, TargetError> {
    let host = url.bare_host().to_owned();
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), url.port))
            .await
            .map_err(|e| TargetError::Unresolved {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(TargetError::Unresolved {
            host,
            reason: "no addresses".into(),
        });
    }
    for addr in &addrs {
        check_address(addr.ip(), allow).map_err(|why| TargetError::Refused {
            host: host.clone(),
            ip: addr.ip(),
            why,
        })?;
    }
    if !url.https && !addrs.iter().all(|a| allow.contains(a.ip())) {
        return Err(TargetError::PlainHttp);
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Option<Refusal> {
        classify(text.parse().expect("an address literal"))
    }

    #[test]
    fn inward_ipv4_addresses_are_refused_with_their_reason() {
        let cases = [
            ("0.0.0.0", Refusal::Unspecified),
            ("0.1.2.3", Refusal::Unspecified),
            ("127.0.0.1", Refusal::Loopback),
            ("127.255.255.254", Refusal::Loopback),
            ("10.0.0.1", Refusal::Private),
            ("172.16.0.1", Refusal::Private),
            ("172.31.255.255", Refusal::Private),
            ("192.168.1.1", Refusal::Private),
            ("169.254.1.1", Refusal::LinkLocal),
            ("169.254.169.254", Refusal::Metadata),
            ("169.254.170.2", Refusal::Metadata),
            ("100.100.100.200", Refusal::Metadata),
            ("100.64.0.1", Refusal::SharedAddressSpace),
            ("100.127.255.255", Refusal::SharedAddressSpace),
            ("224.0.0.1", Refusal::Multicast),
            ("239.255.255.250", Refusal::Multicast),
            ("255.255.255.255", Refusal::Broadcast),
            ("240.0.0.1", Refusal::Reserved),
            ("192.0.0.8", Refusal::Reserved),
            ("192.0.2.1", Refusal::Documentation),
            ("198.51.100.7", Refusal::Documentation),
            ("203.0.113.9", Refusal::Documentation),
            ("198.18.0.1", Refusal::Benchmarking),
            ("198.19.255.255", Refusal::Benchmarking),
        ];
        for (ip, why) in cases {
            assert_eq!(refused(ip), Some(why), "{ip}");
        }
    }

    #[test]
    fn public_ipv4_addresses_next_to_refused_ranges_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.1",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert_eq!(refused(ip), None, "{ip}");
        }
    }

    #[test]
    fn inward_ipv6_addresses_are_refused_with_their_reason() {
        let cases = [
            ("::", Refusal::Unspecified),
            ("::1", Refusal::Loopback),
            ("fe80::1", Refusal::LinkLocal),
            ("febf::1", Refusal::LinkLocal),
            ("fc00::1", Refusal::UniqueLocal),
            ("fd12:3456::1", Refusal::UniqueLocal),
            ("fd00:ec2::254", Refusal::Metadata),
            ("ff02::1", Refusal::Multicast),
            ("ff0e::1", Refusal::Multicast),
            ("2001:db8::1", Refusal::Documentation),
            ("3fff::1", Refusal::Documentation),
            ("2001::1", Refusal::Reserved),
            ("100::1", Refusal::Reserved),
            ("64:ff9b:1::1", Refusal::Reserved),
            ("fec0::1", Refusal::Reserved),
        ];
        for (ip, why) in cases {
            assert_eq!(refused(ip), Some(why), "{ip}");
        }
    }

    #[test]
    fn ipv4_hidden_in_ipv6_forms_is_judged_as_ipv4() {
        let cases = [
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("::ffff:10.1.2.3", Refusal::Private),
            ("::ffff:169.254.169.254", Refusal::Metadata),
            ("::ffff:7f00:1", Refusal::Loopback),
            ("::127.0.0.1", Refusal::Loopback),
            ("::192.168.0.1", Refusal::Private),
            ("64:ff9b::10.0.0.1", Refusal::Private),
            ("64:ff9b::169.254.169.254", Refusal::Metadata),
            ("2002:7f00:1::", Refusal::Loopback),
            ("2002:a9fe:a9fe::1", Refusal::Metadata),
            ("2002:c0a8:101::", Refusal::Private),
        ];
        for (ip, why) in cases {
            assert_eq!(refused(ip), Some(why), "{ip}");
        }
        assert_eq!(refused("::ffff:8.8.8.8"), None);
        assert_eq!(refused("64:ff9b::8.8.8.8"), None);
        assert_eq!(refused("2002:808:808::1"), None);
    }

    #[test]
    fn public_ipv6_addresses_pass() {
        for ip in ["2606:4700::1111", "2a00:1450:4001::1", "2001:4860::8888"] {
            assert_eq!(refused(ip), None, "{ip}");
        }
    }

    #[test]
    fn the_allow_list_admits_only_its_networks() {
        let allow = AllowList::parse(&["127.0.0.1/32", "::1", "169.254.0.0/16"]).expect("parses");
        assert_eq!(
            check_address("127.0.0.1".parse().expect("ip"), &allow),
            Ok(())
        );
        assert_eq!(check_address("::1".parse().expect("ip"), &allow), Ok(()));
        assert_eq!(
            check_address("::ffff:127.0.0.1".parse().expect("ip"), &allow),
            Ok(())
        );
        assert_eq!(
            check_address("127.0.0.2".parse().expect("ip"), &allow),
            Err(Refusal::Loopback)
        );
        assert_eq!(
            check_address("169.254.1.1".parse().expect("ip"), &allow),
            Ok(())
        );
        assert_eq!(
            check_address("169.254.169.254".parse().expect("ip"), &allow),
            Err(Refusal::Metadata)
        );
        assert!(AllowList::parse(&["localhost"]).is_err());
        assert!(AllowList::parse(&["10.0.0.0/33"]).is_err());
    }

    #[test]
    fn urls_are_parsed_strictly() {
        let url = TargetUrl::parse("https://Hooks.Example.com/in?x=1").expect("valid");
        assert!(url.https);
        assert_eq!(url.host, "hooks.example.com");
        assert_eq!(url.port, 443);
        assert_eq!(url.path, "/in?x=1");
        let url = TargetUrl::parse("http://[::1]:8080").expect("valid");
        assert_eq!(url.bare_host(), "::1");
        assert_eq!(url.authority(), "[::1]:8080");
        assert_eq!(url.path, "/");
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "https:///nohost",
            "/relative",
            "https://exa mple.com/",
            "https://example.com:0/",
            "gopher://example.com",
        ] {
            assert!(TargetUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_locations_resolve_against_the_url() {
        let base = TargetUrl::parse("https://a.example:8443/x").expect("valid");
        let next = base.join("/y?z").expect("path");
        assert_eq!(
            (next.host.as_str(), next.port, next.path.as_str()),
            ("a.example", 8443, "/y?z")
        );
        let next = base.join("//b.example/q").expect("scheme-relative");
        assert_eq!((next.host.as_str(), next.https), ("b.example", true));
        let next = base
            .join("http://169.254.169.254/latest")
            .expect("absolute");
        assert_eq!(next.host, "169.254.169.254");
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_without_the_allow_list() {
        let url = TargetUrl::parse("https://localhost:9/hook").expect("valid");
        let err = resolve_checked(&url, &AllowList::default())
            .await
            .expect_err("localhost is refused");
        assert!(
            matches!(
                err,
                TargetError::Refused {
                    why: Refusal::Loopback,
                    ..
                }
            ),
            "{err}"
        );
        let allow = AllowList::parse(&["127.0.0.0/8", "::1/128"]).expect("parses");
        let addrs = resolve_checked(&url, &allow).await.expect("allow-listed");
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn address_literals_are_checked_without_a_lookup() {
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:10.0.0.1]/",
            "https://10.0.0.1/",
            "https://0.0.0.0/",
        ] {
            let parsed = TargetUrl::parse(url).expect("valid url");
            let err = resolve_checked(&parsed, &AllowList::default()).await;
            assert!(
                matches!(err, Err(TargetError::Refused { .. })),
                "{url}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn plain_http_needs_the_allow_list() {
        let url = TargetUrl::parse("http://127.0.0.1:9/").expect("valid");
        let allow = AllowList::parse(&["127.0.0.1/32"]).expect("parses");
        assert!(resolve_checked(&url, &allow).await.is_ok());
        let https_only = AllowList::parse(&["10.0.0.0/8"]).expect("parses");
        assert!(matches!(
            resolve_checked(&url, &https_only).await,
            Err(TargetError::Refused { .. })
        ));
    }
}
