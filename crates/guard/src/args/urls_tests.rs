use palisade_policy::Glob;

use super::*;

fn rule(host: &str, port: Option<u16>) -> HostRule {
    HostRule {
        host: Glob::new(host).unwrap(),
        port,
    }
}

fn net(rules: &[(&str, Option<u16>)]) -> NetRules {
    NetRules {
        allow: rules.iter().map(|(h, p)| rule(h, *p)).collect(),
    }
}

fn web() -> Vec<String> {
    vec!["http".into(), "https".into()]
}

fn check(raw: &str, n: &NetRules) -> Result<Url, String> {
    check_url(raw, &web(), n)
}

#[test]
fn accepts_listed_host() {
    let n = net(&[("api.github.com", None), ("*.example.com", Some(443))]);
    let u = check("https://api.github.com/repos", &n).unwrap();
    assert_eq!(u.host_str(), Some("api.github.com"));
    assert!(check("https://API.GitHub.com./x", &n).is_ok());
    assert!(check("https://docs.example.com/", &n).is_ok());
    assert!(check("https://docs.example.com:443/", &n).is_ok());
}

#[test]
fn rejects_unlisted_host_and_port() {
    let n = net(&[("api.github.com", None), ("*.example.com", Some(443))]);
    let err = check("https://evil.com/", &n).unwrap_err();
    assert!(err.contains("not in the network allowlist"), "{err}");
    assert!(err.contains("--allow-net evil.com"), "{err}");
    // The default port of the scheme applies: http is 80, not 443.
    assert!(check("http://docs.example.com/", &n).is_err());
    assert!(check("https://docs.example.com:8443/", &n).is_err());
    // A glob on subdomains does not match the parent or a look-alike.
    assert!(check("https://example.com/", &n).is_err());
    assert!(check("https://docs.example.com.evil.com/", &n).is_err());
}

#[test]
fn rejects_every_url_with_empty_allowlist() {
    let err = check("https://api.github.com/", &NetRules::default()).unwrap_err();
    assert!(err.contains("--allow-net api.github.com"), "{err}");
    assert!(err.contains("allows no network destinations"), "{err}");
}

#[test]
fn rejects_disallowed_scheme() {
    let n = net(&[("*", None)]);
    for raw in [
        "file:///etc/passwd",
        "ftp://example.com/",
        "gopher://example.com/",
        "javascript:alert(1)",
        "data:text/plain,hi",
    ] {
        let err = check(raw, &n).unwrap_err();
        assert!(
            err.contains("not allowed") || err.contains("not written"),
            "{raw}: {err}"
        );
    }
    assert!(
        check_url("https://example.com/", &[], &n)
            .unwrap_err()
            .contains("no URL schemes")
    );
}

#[test]
fn rejects_credentials() {
    let n = net(&[("*", None)]);
    for raw in [
        "https://user:pass@example.com/",
        "https://user@example.com/",
        "https://example.com@evil.com/",
        "https://@evil.com/",
        "https://:@evil.com/",
    ] {
        let err = check(raw, &n).unwrap_err();
        assert!(err.contains("credentials"), "{raw}: {err}");
    }
    // `@` after the authority is just part of the path.
    assert!(check("https://example.com/@user", &n).is_ok());
}

#[test]
fn rejects_loopback_in_every_spelling() {
    let n = net(&[("*", None)]);
    for raw in [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://127.1/",
        "http://127.0.1/",
        "http://0/",
        "http://0.0.0.0:8080/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::127.0.0.1]/",
        "http://[2002:7f00:1::]/",
        "http://127。0。0。1/",
        "http://①②⑦.0.0.1/",
    ] {
        let err = check(raw, &n).unwrap_err();
        assert!(err.contains("palisade refuses"), "{raw}: {err}");
    }
}

#[test]
fn normalizes_numeric_hosts_to_ipv4() {
    for raw in ["http://2130706433/", "http://0x7f.1/", "http://127.1/"] {
        let u = Url::parse(raw).unwrap();
        assert_eq!(u.host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)), "{raw}");
    }
}

#[test]
fn rejects_private_link_local_and_special_ranges() {
    let n = net(&[("*", None)]);
    for raw in [
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://169.254.1.1/",
        "http://100.64.0.1/",
        "http://255.255.255.255/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://192.0.2.1/",
        "http://198.51.100.1/",
        "http://203.0.113.1/",
        "http://198.18.0.1/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[fe80::1]/",
        "http://[ff02::1]/",
        "http://[2001:db8::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://[64:ff9b::10.1.2.3]/",
        "http://[64:ff9b:1::1]/",
        "http://[2001::1]/",
    ] {
        assert!(check(raw, &n).is_err(), "{raw}");
    }
    // Neighbours of the ranges are ordinary public addresses.
    for raw in [
        "http://172.32.0.1/",
        "http://100.128.0.1/",
        "http://8.8.8.8/",
        "http://[2606:4700::1111]/",
        "http://[64:ff9b::8.8.8.8]/",
    ] {
        assert!(check(raw, &n).is_ok(), "{raw}: {:?}", check(raw, &n));
    }
}

#[test]
fn rejects_cloud_metadata_endpoints() {
    let n = net(&[("*", None)]);
    for raw in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/",
        "http://instance-data/",
    ] {
        let err = check(raw, &n).unwrap_err();
        assert!(err.contains("metadata"), "{raw}: {err}");
    }
}

#[test]
fn accepts_special_ip_only_when_named_exactly() {
    let n = net(&[("127.0.0.1", Some(8080)), ("[::1]", None), ("10.*", None)]);
    assert!(check("http://127.0.0.1:8080/", &n).is_ok());
    assert!(check("http://2130706433:8080/", &n).is_ok());
    assert!(check("http://127.0.0.1:9090/", &n).is_err());
    assert!(check("http://127.0.0.2:8080/", &n).is_err());
    assert!(check("http://[::1]/", &n).is_ok());
    // A mapped spelling of an allowed IPv4 address is a different address.
    assert!(check("http://[::ffff:127.0.0.1]:8080/", &n).is_err());
    // A glob never opens a private address.
    let err = check("http://10.0.0.1/", &n).unwrap_err();
    assert!(err.contains("--allow-net 10.0.0.1"), "{err}");
}

#[test]
fn rejects_local_names_unless_named() {
    let n = net(&[("*", None)]);
    for raw in [
        "http://localhost/",
        "http://LOCALHOST./",
        "http://app.localhost/",
        "http://printer.local/",
        "http://db.corp.internal/",
        "http://router.home.arpa/",
        "http://jenkins/",
        "http://ⓛocalhost/",
    ] {
        let err = check(raw, &n).unwrap_err();
        assert!(err.contains("unless the policy names them"), "{raw}: {err}");
    }
    let n = net(&[("localhost", Some(3000)), ("*.corp.internal", None)]);
    assert!(check("http://localhost:3000/", &n).is_ok());
    assert!(check("http://localhost:3001/", &n).is_err());
    assert!(check("http://db.corp.internal/", &n).is_ok());
}

#[test]
fn rejects_parser_differentials() {
    let n = net(&[("*", None)]);
    for raw in [
        "http://example.com\\@evil.com/",
        "http://evil\t.com/",
        "http://evil.com\n/",
        " http://example.com/",
        "http:evil.com",
        "http:/evil.com",
        "http:///evil.com",
        "http://ex%61mple.com/",
        "",
    ] {
        assert!(check(raw, &n).is_err(), "{raw:?}");
    }
}

#[test]
fn rejects_numeric_host_for_opaque_schemes() {
    let n = net(&[("*", None)]);
    let schemes = vec!["git".to_string()];
    assert!(check_url("git://127.1/repo", &schemes, &n).is_err());
    assert!(check_url("git://0x7f.1/repo", &schemes, &n).is_err());
    assert!(check_url("git://localhost/repo", &schemes, &n).is_err());
    assert!(check_url("git://git.example.org/repo", &schemes, &n).is_ok());
    assert!(check_url("git://10.0.0.1/repo", &schemes, &n).is_err());
    assert!(check_url("git://8.8.8.8/repo", &schemes, &n).is_ok());
    assert!(check_url("git://010.0.0.1/repo", &schemes, &n).is_err());
}

#[test]
fn rejects_relative_and_hostless_urls() {
    let n = net(&[("*", None)]);
    assert!(check("/just/a/path", &n).is_err());
    assert!(check("example.com", &n).is_err());
    let schemes = vec!["mailto".to_string()];
    assert!(check_url("mailto:a@example.com", &schemes, &n).is_err());
}

#[test]
fn cve_2025_68144_leading_dash() {
    // The git server passed a model-chosen revision straight to `git diff`; `--output=…` wrote a file.
    assert_eq!(
        check_positional("--output=/home/u/.bashrc"),
        Err(LeadingDash)
    );
    assert_eq!(check_positional("-c"), Err(LeadingDash));
    assert_eq!(
        check_positional("  --upload-pack=touch /tmp/x"),
        Err(LeadingDash)
    );
    assert_eq!(check_positional("main"), Ok(()));
    assert_eq!(check_positional("HEAD~1"), Ok(()));
    assert_eq!(check_positional("feature/a-b"), Ok(()));
    assert_eq!(check_positional(""), Ok(()));
}
