//! Authentication by JWT (issue 12): a registry whose callers present tokens signed by keys from a directory,
//! and every way a token is refused, each with a message naming the reason. Over real gRPC on loopback.

use std::{path::Path, time::Duration};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::Code;
use township_e2e::{Backend, Client, PATIENCE, TestClassifier, TestDatabase, TestRegistry};
use township_proto::registry::v1 as pb;
use township_runtime::auth::jwt::{Authenticator, JwtConfig, PinnedAlgorithm};

const ISSUER: &str = "https://bianban.changsha.gov.cn";
const AUDIENCE: &str = "township-registry";

/// Writes an Ed25519 key pair: the public key as `keys/<kid>.pem` (what the server reads), the private key
/// outside that directory; returns the private key's PEM.
fn key_pair(dir: &Path, kid: &str) -> Vec<u8> {
    let private = dir.join(format!("{kid}.key"));
    let public = township_registry::audit::generate_key_pair(&private).expect("a key pair");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::rename(public, dir.join("keys").join(format!("{kid}.pem"))).unwrap();
    std::fs::read(private).unwrap()
}

fn now() -> i64 {
    township_runtime::now_ms() / 1000
}

fn claims(sub: &str) -> serde_json::Value {
    serde_json::json!({
        "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600,
        "roles": ["city_admin"], "jurisdiction": ["4301"],
    })
}

fn sign(private_pem: &[u8], kid: &str, claims: &serde_json::Value) -> String {
    let header = Header { kid: Some(kid.to_owned()), ..Header::new(Algorithm::EdDSA) };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_pem(private_pem).unwrap()).unwrap()
}

/// A token with a header of the caller's making and a signature that is not one.
fn forged(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let b64 = |value: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{}", b64(header), b64(claims), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"sig"))
}

async fn list_cities(client: &mut Client, token: Option<&str>) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(pb::ListCitiesRequest::default());
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    client.list_cities(request).await.map(|_| ())
}

struct AuthApp {
    dir: tempfile::TempDir,
    client: Client,
    registry: TestRegistry,
    classifier: TestClassifier,
    _database: TestDatabase,
    private_k1: Vec<u8>,
}

async fn spawn() -> AuthApp {
    let dir = tempfile::tempdir().unwrap();
    let private_k1 = key_pair(dir.path(), "k1");
    let config = JwtConfig {
        keys_dir: dir.path().join("keys"),
        algorithm: PinnedAlgorithm::EdDsa,
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
    };
    let authenticator = Authenticator::new(Some(config), false, Duration::from_millis(200)).unwrap();
    let database = TestDatabase::new(Backend::Sqlite).await;
    let classifier = TestClassifier::spawn().await;
    let registry = TestRegistry::spawn_authenticated(database.url(), &classifier.url(), authenticator).await;
    AuthApp { client: registry.client().await, dir, registry, classifier, _database: database, private_k1 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_unauthenticated_and_says_why() {
    let mut app = spawn().await;
    let good = sign(&app.private_k1, "k1", &claims("zhang.san"));
    list_cities(&mut app.client, Some(&good)).await.expect("a good token");

    let mut expired = claims("zhang.san");
    expired["exp"] = (now() - 3600).into();
    let mut not_yet = claims("zhang.san");
    not_yet["nbf"] = (now() + 3600).into();
    let mut wrong_aud = claims("zhang.san");
    wrong_aud["aud"] = "township-classifier".into();
    let mut wrong_iss = claims("zhang.san");
    wrong_iss["iss"] = "https://evil.example".into();
    let mut no_sub = claims("zhang.san");
    no_sub.as_object_mut().unwrap().remove("sub");
    let mut bad_role = claims("zhang.san");
    bad_role["roles"] = serde_json::json!(["superuser"]);
    let public_k1 = std::fs::read(app.dir.path().join("keys/k1.pem")).unwrap();
    let hs256_with_the_public_key = jsonwebtoken::encode(
        &Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) },
        &claims("zhang.san"),
        &EncodingKey::from_secret(&public_k1),
    )
    .unwrap();
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let other = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims("li.si").to_string());
        format!("{}.{other}.{}", parts[0], parts[2])
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "no credentials"),
        ("alg none", Some(forged(&serde_json::json!({"alg": "none", "kid": "k1"}), &claims("x"))), "alg none"),
        ("HS256 with the public key", Some(hs256_with_the_public_key), "HS256"),
        (
            "RS256 when EdDSA is pinned",
            Some(forged(&serde_json::json!({"alg": "RS256", "kid": "k1"}), &claims("x"))),
            "RS256",
        ),
        ("expired", Some(sign(&app.private_k1, "k1", &expired)), "expired"),
        ("not yet valid", Some(sign(&app.private_k1, "k1", &not_yet)), "not valid yet"),
        ("wrong audience", Some(sign(&app.private_k1, "k1", &wrong_aud)), "wrong audience"),
        ("wrong issuer", Some(sign(&app.private_k1, "k1", &wrong_iss)), "wrong issuer"),
        ("unknown kid", Some(sign(&app.private_k1, "k9", &claims("x"))), "unknown key id \"k9\""),
        ("tampered payload", Some(tampered), "bad signature"),
        ("no sub", Some(sign(&app.private_k1, "k1", &no_sub)), "sub"),
        ("unknown role", Some(sign(&app.private_k1, "k1", &bad_role)), "superuser"),
    ];
    for (what, token, reason) in cases {
        let status = list_cities(&mut app.client, token.as_deref()).await.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
        assert!(status.message().contains(reason), "{what}: the message names the reason: {}", status.message());
        assert!(status.message().len() < 300, "{what}: a short message");
    }
    // Health stays open to probes.
    township_runtime::check_health(&app.registry.url(), township_registry::service::SERVICE_NAME, PATIENCE)
        .await
        .expect("health without a token");
    app.registry.stop().await;
    app.classifier.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_a_restart() {
    let mut app = spawn().await;
    let old = sign(&app.private_k1, "k1", &claims("zhang.san"));
    // A second key appears in the directory: its tokens are accepted once the server has re-read it.
    let staging = tempfile::tempdir().unwrap();
    let private_k2 = key_pair(staging.path(), "k2");
    std::fs::rename(staging.path().join("keys/k2.pem"), app.dir.path().join("keys/k2.pem")).unwrap();
    let new = sign(&private_k2, "k2", &claims("zhang.san"));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while list_cities(&mut app.client, Some(&new)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the new key was never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    list_cities(&mut app.client, Some(&old)).await.expect("the old key still works until it is removed");
    // The old key leaves: its tokens are refused, the new key's still accepted.
    std::fs::remove_file(app.dir.path().join("keys/k1.pem")).unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match list_cities(&mut app.client, Some(&old)).await {
            Err(status) => {
                assert!(status.message().contains("unknown key id \"k1\""), "{status:?}");
                break;
            }
            Ok(()) => assert!(tokio::time::Instant::now() < deadline, "the removed key still verifies"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    list_cities(&mut app.client, Some(&new)).await.expect("the new key");
    app.registry.stop().await;
    app.classifier.stop().await;
}

#[test]
fn a_server_given_no_way_to_authenticate_is_told_what_to_pass() {
    let error = township_runtime::auth::AuthArgs::default().authenticator("township-registry", false).err().unwrap();
    let message = format!("{error:#}");
    for flag in ["--auth-jwt-keys", "--tls-client-ca", "--insecure-no-auth"] {
        assert!(message.contains(flag), "the message names {flag}: {message}");
    }
    let disabled = township_runtime::auth::AuthArgs { insecure_no_auth: true, ..Default::default() };
    assert!(disabled.authenticator("township-registry", false).unwrap().is_disabled(), "only when asked for");
}
