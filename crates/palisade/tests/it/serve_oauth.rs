//! `palisade serve` as an OAuth 2.1 resource server: real ES256 tokens, the issuer's metadata and JWKS
//! served over loopback HTTPS (a Python `http.server` with a certificate made at test time), and every
//! negative case refused with the right status.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use palisade_testkit::TempDir;
use palisade_testkit::xdg::TestHome;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http::{Gateway, HttpsStandIn};
use crate::util;

const ECHO: &str = "palisade-echo-server";

/// A signing key and its public JWK.
struct Key {
    kid: String,
    pem: String,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let kp = rcgen::KeyPair::generate().expect("an EC P-256 key");
    let raw = kp.public_key_raw();
    assert_eq!(raw.len(), 65, "an uncompressed P-256 point");
    Key {
        kid: kid.into(),
        pem: kp.serialize_pem(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
        }),
    }
}

/// A loopback HTTPS issuer: metadata at /.well-known/oauth-authorization-server, keys at /jwks.json.
struct Issuer {
    // Before `dir`: the server stops before its files go.
    https: HttpsStandIn,
    dir: TempDir,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Issuer {
    fn start(keys: &[&Key]) -> Issuer {
        let dir = TempDir::new("oauth-issuer");
        let root = dir.join("www");
        std::fs::create_dir_all(root.join(".well-known")).unwrap();
        let handler =
            "import os\nos.chdir(sys.argv[1])\nHandler = http.server.SimpleHTTPRequestHandler";
        let mut https =
            HttpsStandIn::start(dir.path(), &["127.0.0.1"], handler, &root, Stdio::piped());
        let port = https.port;
        let url = format!("https://127.0.0.1:{port}");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        {
            let log = log.clone();
            let err = https.stderr();
            std::thread::spawn(move || {
                for l in BufReader::new(err).lines().map_while(Result::ok) {
                    log.lock().unwrap().push_str(&(l + "\n"));
                }
            });
        }
        std::fs::write(
            root.join(".well-known/oauth-authorization-server"),
            serde_json::to_vec(&json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json")}))
                .unwrap(),
        )
        .unwrap();
        let issuer = Issuer {
            https,
            dir,
            url,
            log,
        };
        issuer.publish(keys);
        issuer
    }

    /// Replaces the JWKS (key rotation).
    fn publish(&self, keys: &[&Key]) {
        let set = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        let tmp = self.dir.join("www/jwks.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&set).unwrap()).unwrap();
        std::fs::rename(tmp, self.dir.join("www/jwks.json")).unwrap();
    }

    fn jwks_fetches(&self) -> usize {
        self.log.lock().unwrap().matches("GET /jwks.json").count()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(k: &Key, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(k.kid.clone());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_ec_pem(k.pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn init_status(gw: &Gateway, token: &str) -> (u16, String, String) {
    let r = gw
        .client("/mcp", Some(token))
        .post(&super::http::initialize_request());
    (
        r.status,
        r.header("www-authenticate").unwrap_or("").to_owned(),
        r.text(),
    )
}

#[test]
fn oauth_tokens_are_checked_for_signature_alg_kid_audience_issuer_time_and_scope() {
    let k1 = key("k1");
    let k2 = key("k2");
    let issuer = Issuer::start(&[&k1]);
    let home = TestHome::new();
    let ca = issuer.https.ca.to_str().unwrap().to_owned();
    let gw = Gateway::start(
        &home,
        &[
            "--oauth-issuer",
            &issuer.url,
            "--oauth-ca",
            &ca,
            "--oauth-jwks-refresh",
            "1s",
        ],
        &[util::echo_server()],
    );
    let aud = format!("http://127.0.0.1:{}/mcp", gw.addr.port());
    let t = now();
    let good = json!({"iss": issuer.url, "aud": aud, "sub": "u1", "client_id": "ci-bot",
                      "exp": t + 300, "iat": t, "scope": format!("openid mcp:{ECHO}")});
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };

    // The protected-resource metadata names the issuer.
    let meta = super::http::request(
        gw.addr,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        None,
    );
    assert_eq!(meta.json()["authorization_servers"], json!([issuer.url]));
    assert_eq!(meta.json()["resource"], aud);

    // A valid token works end to end, and the audit trail names its client.
    let mut c = gw.client("/mcp", Some(&sign(&k1, &good)));
    c.initialize();
    let r = c.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "jwt"}}),
    );
    assert_eq!(util::call_text(&r), "jwt");
    let events = util::audit_events(&home, ECHO);
    assert!(
        events
            .iter()
            .any(|e| e["client"] == "ci-bot" && e["tool"] == "echo"),
        "{events:?}"
    );

    // Each refusal, with its status.
    let cases: Vec<(&str, String, u16)> = vec![
        ("expired", sign(&k1, &with(json!({"exp": t - 120}))), 401),
        (
            "not yet valid",
            sign(&k1, &with(json!({"nbf": t + 600}))),
            401,
        ),
        (
            "wrong audience",
            sign(&k1, &with(json!({"aud": "https://other.example/mcp"}))),
            401,
        ),
        (
            "wrong issuer",
            sign(&k1, &with(json!({"iss": "https://evil.example"}))),
            401,
        ),
        ("unknown kid", sign(&k2, &good), 401),
        (
            "alg none",
            {
                let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
                let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap());
                format!("{h}.{p}.")
            },
            401,
        ),
        (
            "HS256 with the public key as secret",
            {
                let mut h = Header::new(Algorithm::HS256);
                h.kid = Some("k1".into());
                let secret = serde_json::to_vec(&k1.jwk).unwrap();
                jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(&secret)).unwrap()
            },
            401,
        ),
        (
            "tampered payload",
            {
                let tok = sign(&k1, &good);
                let parts: Vec<&str> = tok.split('.').collect();
                let p = URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&with(json!({"scope": "mcp:*"}))).unwrap());
                format!("{}.{p}.{}", parts[0], parts[2])
            },
            401,
        ),
        (
            "no mcp scope",
            sign(&k1, &with(json!({"scope": "openid profile"}))),
            403,
        ),
    ];
    for (what, token, want) in &cases {
        let (status, challenge, body) = init_status(&gw, token);
        assert_eq!(status, *want, "{what}: {body}");
        if *want == 401 {
            assert!(
                challenge.contains("invalid_token") && challenge.contains("resource_metadata="),
                "{what}: {challenge}"
            );
        } else {
            assert!(
                challenge.contains("insufficient_scope"),
                "{what}: {challenge}"
            );
        }
    }

    // A tool-scoped token cannot call other tools.
    let narrow = sign(
        &k1,
        &with(json!({"scope": format!("mcp:{ECHO}:other_tool")})),
    );
    let mut n = gw.client("/mcp", Some(&narrow));
    n.initialize();
    let r = n.post(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains(&format!("scope=\"mcp:{ECHO}:echo\""))
    );

    // Key rotation: a kid that appears in the JWKS later is fetched on first use; unknown kids do not
    // make palisade fetch more than once per refresh interval.
    let before = issuer.jwks_fetches();
    for _ in 0..5 {
        assert_eq!(init_status(&gw, &sign(&k2, &good)).0, 401);
    }
    let burst = issuer.jwks_fetches() - before;
    assert!(burst <= 1, "5 unknown-kid tokens made {burst} JWKS fetches");
    issuer.publish(&[&k1, &k2]);
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _, body) = init_status(&gw, &sign(&k2, &good));
    assert_eq!(status, 200, "the rotated-in key is used: {body}");
}

#[test]
fn oauth_issuer_that_cannot_be_reached_or_trusted_stops_palisade_at_start() {
    let k1 = key("k1");
    let issuer = Issuer::start(&[&k1]);
    let home = TestHome::new();
    // Without the CA file the issuer's certificate is not trusted.
    let out = util::output(
        &home,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--oauth-issuer",
            &issuer.url,
            "--",
            &util::echo_server(),
        ],
    );
    let (code, _, err) = util::code_out_err(&out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("JWKS") || err.contains("issuer"), "{err}");
    // A plain-http issuer is refused outright.
    let out = util::output(
        &home,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--oauth-issuer",
            "http://127.0.0.1:9",
            "--",
            &util::echo_server(),
        ],
    );
    let (code, _, err) = util::code_out_err(&out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("https://"), "{err}");
}
