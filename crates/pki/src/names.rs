//! The names a server certificate is issued for.
//!
//! A [`ServerName`] can only be made from text that is an IP address or a well-formed DNS
//! name, so nothing that reaches rcgen can make it fail or put an odd entry in a
//! certificate. DNS names are kept in lower case, which is how they are compared.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use rcgen::SanType;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::PkiError;

/// Longest DNS name in its dotted text form (RFC 1035).
const MAX_DNS_NAME: usize = 253;

/// Longest label of a DNS name.
const MAX_LABEL: usize = 63;

/// A host name or IP address the server answers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerName {
    /// A DNS name in lower case; the first label may be `*`.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

impl ServerName {
    /// Reads an IP address (IPv6 may be written in brackets) or else a DNS name.
    pub fn parse(raw: &str) -> Result<Self, PkiError> {
        let unbracketed = raw
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(raw);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }

        let invalid = |reason| PkiError::InvalidServerName {
            name: raw.to_owned(),
            reason,
        };
        check_dns_name(raw).map_err(invalid)?;
        Ok(Self::Dns(raw.to_ascii_lowercase()))
    }

    /// Parses every name of a list, dropping repeats. The list must not be empty.
    pub(crate) fn parse_all(raw: &[String]) -> Result<BTreeSet<Self>, PkiError> {
        let names = raw
            .iter()
            .map(|name| Self::parse(name))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if names.is_empty() {
            return Err(PkiError::NoServerNames);
        }
        Ok(names)
    }

    /// The subject alternative name entry for this name.
    pub(crate) fn to_san(&self) -> Result<SanType, PkiError> {
        match self {
            Self::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            Self::Dns(name) => name
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|source| PkiError::Generate {
                    what: "a DNS subject alternative name",
                    source,
                }),
        }
    }

    /// The names listed in the subject alternative names of `cert`. Entries that are not
    /// DNS names or IP addresses, or that are malformed, are left out.
    pub(crate) fn all_in(cert: &X509Certificate<'_>) -> BTreeSet<Self> {
        let Ok(Some(sans)) = cert.subject_alternative_name() else {
            return BTreeSet::new();
        };
        sans.value
            .general_names
            .iter()
            .filter_map(|general| match general {
                GeneralName::DNSName(dns) => Self::parse(dns).ok(),
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(Self::Ip),
                _ => None,
            })
            .collect()
    }
}

impl FromStr for ServerName {
    type Err = PkiError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => ip.fmt(f),
        }
    }
}

fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_DNS_NAME {
        return Err("it is longer than 253 characters");
    }

    let labels: Vec<&str> = name.split('.').collect();
    for (index, label) in labels.iter().enumerate() {
        if index == 0 && *label == "*" {
            if labels.len() < 3 {
                return Err("a wildcard needs at least two labels after it");
            }
            continue;
        }
        if label.is_empty() {
            return Err("it has an empty label");
        }
        if label.len() > MAX_LABEL {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<ServerName, PkiError> {
        ServerName::parse(raw)
    }

    #[test]
    fn ip_addresses_and_dns_names_are_told_apart() {
        let v4: IpAddr = [127, 0, 0, 1].into();
        let v6: IpAddr = [0, 0, 0, 0, 0, 0, 0, 1].into();
        assert_eq!(parse("127.0.0.1").ok(), Some(ServerName::Ip(v4)));
        assert_eq!(parse("::1").ok(), Some(ServerName::Ip(v6)));
        assert_eq!(parse("[::1]").ok(), Some(ServerName::Ip(v6)));
        assert_eq!(
            parse("Chat.Example.COM").ok(),
            Some(ServerName::Dns("chat.example.com".into()))
        );
        assert_eq!(
            parse("*.example.com").ok(),
            Some(ServerName::Dns("*.example.com".into()))
        );
    }

    #[test]
    fn malformed_names_are_rejected() {
        let long_label = "a".repeat(64);
        let bad = [
            "",
            "a..b",
            "-a.com",
            "a-.com",
            "a b",
            "bad_name",
            "é.com",
            "*",
            "*.com",
            "a.*.com",
            "example.com.",
            &long_label,
        ];
        for name in bad {
            assert!(
                matches!(parse(name), Err(PkiError::InvalidServerName { .. })),
                "{name:?} was accepted"
            );
        }
    }

    #[test]
    fn an_empty_name_list_is_rejected_and_repeats_are_dropped() {
        assert!(matches!(
            ServerName::parse_all(&[]),
            Err(PkiError::NoServerNames)
        ));
        let list = ["localhost".to_owned(), "LOCALHOST".to_owned()];
        assert_eq!(
            ServerName::parse_all(&list).map(|set| set.len()).ok(),
            Some(1)
        );
    }
}
