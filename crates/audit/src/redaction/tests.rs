use super::*;
use serde_json::json;

/// A deterministic, high-entropy token body from `alphabet`, so no real-looking secret is a literal here.
fn body(n: usize, alphabet: &str) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chars[(x % chars.len() as u64) as usize]
        })
        .collect()
}

const ALNUM: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const URLSAFE: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";

fn masks(secret: &str, kind: &str) {
    let text = format!("before {secret} after");
    assert_eq!(
        redact_str(&text),
        format!("before [REDACTED:{kind}] after"),
        "{secret}"
    );
}

fn keeps(text: &str) {
    assert_eq!(redact_str(text), text);
}

#[test]
fn github_classic_tokens_are_masked() {
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        masks(&format!("{prefix}{}", body(36, ALNUM)), "github-token");
    }
}

#[test]
fn github_fine_grained_tokens_are_masked() {
    let t = format!("github_pat_{}_{}", body(22, ALNUM), body(59, ALNUM));
    masks(&t, "github-token");
}

#[test]
fn github_short_or_placeholder_tokens_are_kept() {
    keeps("ghp_abc123");
    keeps(&format!("ghp_{}", "x".repeat(36)));
    keeps("see the ghp_ prefix docs");
}

#[test]
fn gitlab_tokens_are_masked() {
    masks(&format!("glpat-{}", body(20, URLSAFE)), "gitlab-token");
}

#[test]
fn gitlab_short_tokens_are_kept() {
    keeps("glpat-abc");
    keeps("glpat-xxxxxxxxxxxxxxxxxxxx");
}

#[test]
fn slack_tokens_are_masked() {
    for p in ["xoxb", "xoxa", "xoxp", "xoxr", "xoxs"] {
        masks(
            &format!("{p}-2748193056-8361920475-{}", body(24, ALNUM)),
            "slack-token",
        );
    }
}

#[test]
fn slack_short_or_unknown_tokens_are_kept() {
    keeps("xoxb-123");
    keeps(&format!("xoxq-2748193056-{}", body(24, ALNUM)));
}

#[test]
fn openai_keys_are_masked() {
    masks(&format!("sk-{}", body(48, ALNUM)), "openai-key");
    masks(&format!("sk-proj-{}", body(120, URLSAFE)), "openai-key");
}

#[test]
fn openai_placeholders_are_kept() {
    keeps("sk-your-key-here");
    keeps(&format!("sk-{}", "x".repeat(48)));
    keeps("task-runner-disk-cleanup-ok");
}

#[test]
fn anthropic_keys_are_masked_as_anthropic() {
    masks(
        &format!("sk-ant-api03-{}AA", body(93, URLSAFE)),
        "anthropic-key",
    );
}

#[test]
fn anthropic_short_keys_are_kept() {
    keeps("sk-ant-short");
    keeps("sk-ant-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
}

#[test]
fn aws_access_key_ids_are_masked() {
    masks(&format!("AKIA{}", body(16, UPPER)), "aws-access-key-id");
    masks(&format!("ASIA{}", body(16, UPPER)), "aws-access-key-id");
}

#[test]
fn aws_placeholders_and_short_ids_are_kept() {
    keeps("AKIAXXXXXXXXXXXXXXXX");
    keeps("AKIA1234");
    keeps(&format!("AKIA{}", body(20, UPPER))); // too long to be an id
}

#[test]
fn google_api_keys_are_masked() {
    masks(&format!("AIza{}", body(35, URLSAFE)), "google-api-key");
}

#[test]
fn google_short_keys_are_kept() {
    keeps("AIzaShortValue");
    keeps(&format!("AIza{}", "0".repeat(35)));
}

#[test]
fn stripe_keys_are_masked() {
    for p in ["sk_live_", "rk_live_", "sk_test_"] {
        masks(&format!("{p}{}", body(24, ALNUM)), "stripe-key");
    }
}

#[test]
fn stripe_short_keys_are_kept() {
    keeps("sk_live_123");
    keeps(&format!("sk_test_{}", "x".repeat(24)));
}

#[test]
fn jwts_are_masked() {
    // The example token from jwt.io.
    masks(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "jwt",
    );
}

#[test]
fn jwt_lookalikes_are_kept() {
    keeps("eyJ.eyJ.x");
    keeps("eyJhbGciOiJIUzI1NiJ9 without dots");
}

#[test]
fn pem_private_keys_are_masked_whole() {
    let pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----",
        body(64, ALNUM),
        body(64, ALNUM)
    );
    masks(&pem, "private-key");
    masks(
        &format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----",
            body(70, ALNUM)
        ),
        "private-key",
    );
}

#[test]
fn a_truncated_private_key_is_masked_to_the_end() {
    let text = format!("key: -----BEGIN PRIVATE KEY-----\n{}", body(40, ALNUM));
    assert_eq!(redact_str(&text), "key: [REDACTED:private-key]");
}

#[test]
fn public_keys_and_certificates_are_kept() {
    keeps(
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    );
    keeps("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----");
}

#[test]
fn url_passwords_are_masked_and_the_user_kept() {
    assert_eq!(
        redact_str("connect postgres://admin:s3cr3t-Pw@db.internal:5432/app now"),
        "connect postgres://admin:[REDACTED:url-password]@db.internal:5432/app now"
    );
    assert_eq!(
        redact_str("redis://:hunter2@127.0.0.1:6379"),
        "redis://:[REDACTED:url-password]@127.0.0.1:6379"
    );
}

#[test]
fn urls_without_passwords_are_kept() {
    keeps("https://user@example.com/path");
    keeps("https://example.com:8443/a@b");
    keeps("mailto:someone@example.com");
}

#[test]
fn secret_pairs_in_free_text_are_masked() {
    assert_eq!(
        redact_str("env DB_PASSWORD=hunter2 PORT=5432"),
        "env DB_PASSWORD=[REDACTED:secret-field] PORT=5432"
    );
    assert_eq!(
        redact_str(r#"{"api_key": "abc123", "q": 1}"#),
        r#"{"api_key": "[REDACTED:secret-field]", "q": 1}"#
    );
    assert_eq!(
        redact_str("GET /cb?access_token=abc.def&state=1"),
        "GET /cb?access_token=[REDACTED:secret-field]&state=1"
    );
}

#[test]
fn counts_and_names_that_mention_tokens_are_kept() {
    keeps("max_tokens: 100");
    keeps("tokens=42 secret_name=prod-db");
    keeps("the password is wrong");
}

#[test]
fn authorization_headers_are_masked_whatever_the_scheme() {
    assert_eq!(
        redact_str("Authorization: Basic dXNlcjpwYXNzd29yZA=="),
        "Authorization: [REDACTED:authorization]"
    );
    assert_eq!(
        redact_str("curl -H 'Authorization: Bearer abcdef0123456789xyz' https://x"),
        "curl -H 'Authorization: [REDACTED:authorization]' https://x"
    );
    assert_eq!(
        redact_str("sent bearer abcdef0123456789xyz to upstream"),
        "sent bearer [REDACTED:bearer] to upstream"
    );
}

#[test]
fn short_bearer_words_are_kept() {
    keeps("the bearer of bad news");
}

#[test]
fn clean_text_is_returned_borrowed() {
    assert!(matches!(
        redact_str("read_file /tmp/notes.txt"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn redaction_is_idempotent() {
    let text = format!(
        "token={} url=https://u:p4ss@h ghp_{} Authorization: Basic Zm9vOmJhcg==",
        body(30, ALNUM),
        body(36, ALNUM)
    );
    let once = redact_str(&text).into_owned();
    assert_eq!(redact_str(&once), once);
}

#[test]
fn values_of_secret_keys_are_masked_whatever_they_hold() {
    let ghp = format!("ghp_{}", body(36, ALNUM));
    let args = json!({
        "Password": "hunter2",
        "API-Key": 12345,
        "nested": [{"client_secret": {"a": 1}}, {"x-api-key": "k"}],
        "github_token": "short",
        "token": null,
        "refresh_token": "",
        "max_tokens": 100,
        "secret_name": "prod",
        "body": format!("please use {ghp} for this"),
        "path": "/tmp/a",
    });
    assert_eq!(
        redact(&args),
        json!({
            "Password": "[REDACTED:secret-field]",
            "API-Key": "[REDACTED:secret-field]",
            "nested": [{"client_secret": "[REDACTED:secret-field]"}, {"x-api-key": "[REDACTED:secret-field]"}],
            "github_token": "[REDACTED:secret-field]",
            "token": null,
            "refresh_token": "",
            "max_tokens": 100,
            "secret_name": "prod",
            "body": "please use [REDACTED:github-token] for this",
            "path": "/tmp/a",
        })
    );
}

#[test]
fn secret_key_names_are_matched_case_and_separator_insensitively() {
    for k in [
        "password",
        "PASSWD",
        "Secret",
        "token",
        "api_key",
        "apikey",
        "Authorization",
        "access_token",
        "client-secret",
        "aws.secret_access_key",
        "DB_PASSWORD",
    ] {
        assert!(is_secret_key(k), "{k}");
    }
    for k in [
        "max_tokens",
        "path",
        "author",
        "key",
        "secret_name",
        "token_count",
    ] {
        assert!(!is_secret_key(k), "{k}");
    }
}

#[test]
fn huggingface_npm_and_pypi_tokens_are_masked() {
    masks(&format!("hf_{}", body(34, ALNUM)), "huggingface-token");
    masks(&format!("npm_{}", body(36, ALNUM)), "npm-token");
    masks(
        &format!("pypi-AgEIcHlwaS5vcmc{}", body(60, URLSAFE)),
        "pypi-token",
    );
    keeps("hf_short npm_abc pypi-AgEIcHlwaS5vcmc");
}

#[test]
fn find_secrets_locates_what_redact_str_masks() {
    let gh = format!("ghp_{}", body(36, ALNUM));
    let text = format!("use {gh} and postgres://app:Pw{}@db/x", body(12, ALNUM));
    let found = find_secrets(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].kind, "github-token");
    assert_eq!(&text[found[0].range.clone()], gh);
    assert_eq!(found[0].prefix_len, 4);
    assert_eq!(found[1].kind, "url-password");
    assert!(text[found[1].range.clone()].starts_with("Pw"));
    assert_eq!(found[1].prefix_len, 0);
}

#[test]
fn find_secrets_skips_placeholders_and_clean_text() {
    assert!(find_secrets("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").is_empty());
    assert!(find_secrets("nothing to see here").is_empty());
}
