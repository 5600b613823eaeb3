//! Which proxy a request goes through: `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (or their
//! lowercase forms), read as Go's `net/http` reads them (`golang.org/x/net/http/httpproxy`), since
//! that is what docker, podman and skopeo users have set them for:
//!
//! - `https://` URLs go through `HTTPS_PROXY`, `http://` URLs through `HTTP_PROXY` (ignored
//!   when `REQUEST_METHOD` is set: a CGI program's `HTTP_PROXY` comes from a request header).
//!   The uppercase name wins. A proxy without a scheme is `http://`. `ALL_PROXY` is not read
//!   (curl reads it; Go does not).
//! - `localhost` and loopback addresses are never proxied.
//! - `NO_PROXY` is a comma-separated list (spaces ignored): `*` bypasses the proxy for every
//!   host; `example.com` matches it and its subdomains, `.example.com` and `*.example.com`
//!   only subdomains; an IP address matches itself, `10.0.0.0/8` the addresses in it; an
//!   entry with `:PORT` (`example.com:5000`, `[::1]:5000`) matches that port only.
//!
//! ureq reads the environment too, but differently (`ALL_PROXY` first and one proxy for both
//! schemes; `NO_PROXY`'s `example.com` not matching subdomains; no ports, CIDR or loopback
//! rule), so the client decides per request here. The proxy set on a request also carries the
//! `NO_PROXY` names ureq can match, for the hosts of redirects it follows.

use std::net::IpAddr;

use ureq::Proxy;
use ureq::http::Uri;

use crate::Error;

/// The proxies of the environment and the hosts that bypass them.
#[derive(Debug, Default)]
pub(crate) struct ProxySettings {
    https: Option<Proxy>,
    http: Option<Proxy>,
    no_proxy: NoProxy,
}

impl ProxySettings {
    /// From the process's environment.
    pub(crate) fn from_env() -> Result<ProxySettings, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From the variables `lookup` gives (`None`: unset).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ProxySettings, Error> {
        let any = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| lookup(name).filter(|v| !v.is_empty()).map(|v| (name, v)))
        };
        let no_proxy = NoProxy::parse(&any(["NO_PROXY", "no_proxy"]).unwrap_or_default().1);
        let proxy = |found: Option<(&'static str, String)>| {
            found
                .map(|(name, value)| proxy(name, &value, &no_proxy))
                .transpose()
        };
        let cgi = lookup("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
        Ok(ProxySettings {
            https: proxy(any(["HTTPS_PROXY", "https_proxy"]))?,
            http: if cgi {
                None
            } else {
                proxy(any(["HTTP_PROXY", "http_proxy"]))?
            },
            no_proxy,
        })
    }

    /// The proxy for a request to `url`, if it goes through one.
    pub(crate) fn for_url(&self, url: &str) -> Option<&Proxy> {
        let uri: Uri = url.parse().ok()?;
        let (proxy, default_port) = match uri.scheme_str()? {
            "https" => (self.https.as_ref()?, 443),
            "http" => (self.http.as_ref()?, 80),
            _ => return None,
        };
        let host = uri.host()?;
        let port = uri.port_u16().unwrap_or(default_port);
        (!self.no_proxy.bypasses(host, port)).then_some(proxy)
    }
}

/// The proxy named `value` in the variable `name`, knowing `no_proxy` for redirects.
fn proxy(name: &str, value: &str, no_proxy: &NoProxy) -> Result<Proxy, Error> {
    let invalid = |reason: &str| Error::Setup {
        what: format!("the proxy {name}={value}"),
        reason: reason.to_owned(),
    };
    let parsed = Proxy::new(value.trim()).map_err(|e| invalid(&e.to_string()))?;
    let mut builder = Proxy::builder(parsed.protocol())
        .host(parsed.host())
        .port(parsed.port());
    if let Some(user) = parsed.username() {
        builder = builder.username(user);
    }
    if let Some(password) = parsed.password() {
        builder = builder.password(password);
    }
    for entry in no_proxy.ureq_entries() {
        builder = builder.no_proxy(&entry);
    }
    builder.build().map_err(|e| invalid(&e.to_string()))
}

/// `NO_PROXY`, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
struct NoProxy {
    /// `*`: no host is proxied.
    all: bool,
    /// Addresses, with a port when the entry gave one.
    addresses: Vec<(IpAddr, Option<u16>)>,
    /// `ADDRESS/BITS`.
    networks: Vec<(IpAddr, u8)>,
    domains: Vec<Domain>,
}

/// A domain entry.
#[derive(Debug, PartialEq, Eq)]
struct Domain {
    /// Lowercase, with a leading dot: what a subdomain ends with.
    suffix: String,
    /// The entry had no leading dot: the domain itself matches too.
    itself: bool,
    port: Option<u16>,
}

impl NoProxy {
    fn parse(text: &str) -> NoProxy {
        let mut parsed = NoProxy::default();
        for entry in text.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                parsed.all = true;
                continue;
            }
            if let Some((address, bits)) = entry.split_once('/') {
                if let (Ok(address), Ok(bits)) = (address.parse::<IpAddr>(), bits.parse::<u8>()) {
                    let max = if address.is_ipv4() { 32 } else { 128 };
                    if bits <= max {
                        parsed.networks.push((address, bits));
                    }
                }
                continue;
            }
            let (host, port) = split_port(&entry);
            if let Ok(address) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
                parsed.addresses.push((address, port));
                continue;
            }
            let host = host.strip_prefix('*').unwrap_or(host);
            if host.is_empty() || host == "." {
                continue;
            }
            let (suffix, itself) = match host.strip_prefix('.') {
                Some(_) => (host.to_owned(), false),
                None => (format!(".{host}"), true),
            };
            parsed.domains.push(Domain {
                suffix,
                itself,
                port,
            });
        }
        parsed
    }

    /// Whether `host` (as in a URL: an IPv6 address in brackets) at `port` is reached
    /// directly.
    fn bypasses(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let address = host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
        if host == "localhost" || address.is_some_and(|a| a.is_loopback()) || self.all {
            return true;
        }
        let port_matches = |wanted: Option<u16>| wanted.is_none_or(|p| p == port);
        if let Some(address) = address {
            return self
                .addresses
                .iter()
                .any(|&(a, p)| a == address && port_matches(p))
                || self
                    .networks
                    .iter()
                    .any(|&(network, bits)| contains(network, bits, address));
        }
        self.domains.iter().any(|domain| {
            (host.ends_with(&domain.suffix) || (domain.itself && host == domain.suffix[1..]))
                && port_matches(domain.port)
        })
    }

    /// The entries ureq can match the same way (names and addresses without a port, as
    /// ureq's exact and suffix patterns), for the hosts of redirects.
    fn ureq_entries(&self) -> Vec<String> {
        let mut entries = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "[::1]".to_owned(),
        ];
        for (address, port) in &self.addresses {
            if port.is_none() {
                entries.push(match address {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                });
            }
        }
        for domain in self.domains.iter().filter(|d| d.port.is_none()) {
            entries.push(domain.suffix.clone());
            if domain.itself {
                entries.push(domain.suffix[1..].to_owned());
            }
        }
        entries
    }
}

/// `host:port` into its parts; a bare IPv6 address (colons, no brackets) has no port.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// Whether `address` is in `network/bits` (of the same family).
fn contains(network: IpAddr, bits: u8, address: IpAddr) -> bool {
    let (network, address, width) = match (network, address) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            (u128::from(u32::from(n)), u128::from(u32::from(a)), 32u32)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
        _ => return false,
    };
    let bits = u32::from(bits);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (network >> shift) == (address >> shift)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `(NO_PROXY, host as in a URL, port, bypassed)`.
    const NO_PROXY_CASES: &[(&str, &str, u16, bool)] = &[
        // Nothing set: only this machine is reached directly.
        ("", "registry.example.com", 443, false),
        ("", "localhost", 5000, true),
        ("", "LocalHost", 5000, true),
        ("", "127.0.0.1", 5000, true),
        ("", "127.1.2.3", 5000, true),
        ("", "[::1]", 5000, true),
        ("", "192.0.2.7", 443, false),
        // `*` alone: everything.
        ("*", "registry.example.com", 443, true),
        ("*.example.com", "registry.example.com", 443, true),
        ("*.example.com", "example.com", 443, false),
        // A name matches itself and its subdomains, not a name that merely ends the same.
        ("example.com", "example.com", 443, true),
        ("example.com", "registry.example.com", 443, true),
        ("example.com", "a.b.example.com", 443, true),
        ("example.com", "notexample.com", 443, false),
        ("example.com", "example.com.evil.net", 443, false),
        // A leading dot: subdomains only (Go's rule; curl also matches the domain).
        (".example.com", "registry.example.com", 443, true),
        (".example.com", "example.com", 443, false),
        // Case, spaces, empty entries, a trailing dot on the host.
        (
            " Example.COM , ,other.org",
            "REGISTRY.example.com",
            443,
            true,
        ),
        ("a.org, b.org", "b.org", 443, true),
        ("example.com", "registry.example.com.", 443, true),
        // Ports.
        ("example.com:5000", "example.com", 5000, true),
        ("example.com:5000", "example.com", 443, false),
        (
            "registry.example.com:443",
            "registry.example.com",
            443,
            true,
        ),
        // Addresses and networks.
        ("192.0.2.7", "192.0.2.7", 443, true),
        ("192.0.2.7", "192.0.2.8", 443, false),
        ("192.0.2.7:5000", "192.0.2.7", 5000, true),
        ("192.0.2.7:5000", "192.0.2.7", 443, false),
        ("192.0.2.0/24", "192.0.2.200", 443, true),
        ("192.0.2.0/24", "192.0.3.1", 443, false),
        ("10.0.0.0/8", "10.200.3.4", 443, true),
        ("2001:db8::/32", "[2001:db8:1::5]", 443, true),
        ("2001:db8::/32", "[2001:db9::5]", 443, false),
        ("2001:db8::1", "[2001:db8::1]", 443, true),
        ("[2001:db8::1]:5000", "[2001:db8::1]", 5000, true),
        ("[2001:db8::1]:5000", "[2001:db8::1]", 443, false),
        // An address entry does not match a name, nor a name an address.
        ("192.0.2.7", "host.example.com", 443, false),
        ("example.com", "192.0.2.7", 443, false),
    ];

    #[test]
    fn no_proxy_matches_as_go_does() {
        for &(no_proxy, host, port, bypassed) in NO_PROXY_CASES {
            assert_eq!(
                NoProxy::parse(no_proxy).bypasses(host, port),
                bypassed,
                "NO_PROXY={no_proxy:?}, {host}:{port}"
            );
        }
    }

    fn settings(vars: &[(&str, &str)]) -> Result<ProxySettings, Error> {
        ProxySettings::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn proxy_of(settings: &ProxySettings, url: &str) -> Option<String> {
        settings
            .for_url(url)
            .map(|p| format!("{}:{}", p.host(), p.port()))
    }

    #[test]
    fn each_scheme_has_its_proxy_and_the_uppercase_name_wins() {
        let s = settings(&[
            ("HTTPS_PROXY", "http://secure.proxy:3128"),
            ("https_proxy", "http://lower.proxy:3128"),
            ("http_proxy", "plain.proxy:8080"),
            ("ALL_PROXY", "http://all.proxy:1"),
        ])
        .unwrap();
        assert_eq!(
            proxy_of(&s, "https://registry.example.com/v2/").as_deref(),
            Some("secure.proxy:3128")
        );
        assert_eq!(
            proxy_of(&s, "http://registry.example.com:5000/v2/").as_deref(),
            Some("plain.proxy:8080")
        );
        assert_eq!(proxy_of(&s, "https://localhost:5000/v2/"), None);

        let only_http = settings(&[("HTTP_PROXY", "http://plain.proxy:8080")]).unwrap();
        assert_eq!(
            proxy_of(&only_http, "https://registry.example.com/v2/"),
            None
        );
        let none = settings(&[("ALL_PROXY", "http://all.proxy:1")]).unwrap();
        assert_eq!(proxy_of(&none, "https://registry.example.com/v2/"), None);
    }

    #[test]
    fn no_proxy_applies_to_the_url_host_and_port() {
        let s = settings(&[
            ("https_proxy", "http://proxy:3128"),
            ("no_proxy", "internal.example, registry.example.com:5000"),
        ])
        .unwrap();
        for (url, proxied) in [
            ("https://a.internal.example/v2/", false),
            ("https://registry.example.com:5000/v2/", false),
            ("https://registry.example.com/v2/", true),
            ("https://auth.example.com/token?service=x", true),
        ] {
            assert_eq!(s.for_url(url).is_some(), proxied, "{url}");
        }
    }

    #[test]
    fn a_cgi_program_ignores_http_proxy() {
        let s = settings(&[
            ("HTTP_PROXY", "http://from-a-header:1"),
            ("REQUEST_METHOD", "GET"),
        ])
        .unwrap();
        assert_eq!(proxy_of(&s, "http://registry.example.com/v2/"), None);
    }

    #[test]
    fn a_proxy_that_does_not_parse_is_an_error_naming_the_variable() {
        let error = settings(&[("HTTPS_PROXY", "ftp://proxy:21")]).unwrap_err();
        assert!(error.to_string().contains("HTTPS_PROXY"), "{error}");
    }

    #[test]
    fn ureq_is_given_the_names_it_can_match_for_redirects() {
        let parsed = NoProxy::parse("example.com, .sub.org, 192.0.2.7, 10.0.0.0/8, a.net:5000");
        let entries = parsed.ureq_entries();
        for wanted in [
            ".example.com",
            "example.com",
            ".sub.org",
            "192.0.2.7",
            "localhost",
        ] {
            assert!(entries.iter().any(|e| e == wanted), "{wanted}: {entries:?}");
        }
        assert!(
            !entries
                .iter()
                .any(|e| e == "sub.org" || e.contains("a.net"))
        );
    }
}
