//! People authenticate with a JWT: one pinned algorithm (EdDSA or RS256), `exp`, `iss`, `aud` and `sub` required,
//! public keys from a directory (`<kid>.pem`, chosen by the token's `kid`, so keys rotate), re-read when the
//! directory changes. Services authenticate with the client certificate the TLS listener verified.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use tonic::Status;

use super::Authenticate;
use crate::principal::{Credential, Principal, Role, WHOLE_COUNTRY};

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;

/// The algorithm every token must be signed with; any other is refused before a key is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PinnedAlgorithm {
    #[value(name = "EdDSA", alias = "eddsa")]
    EdDsa,
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
}

impl PinnedAlgorithm {
    fn algorithm(self) -> Algorithm {
        match self {
            PinnedAlgorithm::EdDsa => Algorithm::EdDSA,
            PinnedAlgorithm::Rs256 => Algorithm::RS256,
        }
    }

    fn key(self, pem: &[u8]) -> jsonwebtoken::errors::Result<DecodingKey> {
        match self {
            PinnedAlgorithm::EdDsa => DecodingKey::from_ed_pem(pem),
            PinnedAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
        }
    }
}

/// What a server checks tokens against.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub keys_dir: PathBuf,
    pub algorithm: PinnedAlgorithm,
    pub issuer: String,
    pub audience: String,
}

/// The keys of the directory, by `kid`, with what they were read from (to notice a change).
struct KeySet {
    keys: BTreeMap<String, DecodingKey>,
    stamp: Vec<(PathBuf, Option<SystemTime>, u64)>,
}

/// Verifies bearer tokens; and, when `accept_certificates`, takes a verified client certificate as a service.
pub struct Authenticator {
    jwt: Option<(JwtConfig, Arc<RwLock<KeySet>>)>,
    accept_certificates: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Authenticator {
    /// Reads the key directory (at least one key) and, inside a tokio runtime, re-reads it every
    /// `reload_every` when its files change; a reload that fails keeps the keys it had and logs an error.
    pub fn new(jwt: Option<JwtConfig>, accept_certificates: bool, reload_every: Duration) -> anyhow::Result<Arc<Self>> {
        let jwt = match jwt {
            Some(config) => {
                let keys = read_keys(&config.keys_dir, config.algorithm)?;
                anyhow::ensure!(
                    !keys.keys.is_empty(),
                    "--auth-jwt-keys {}: no key files (<kid>.pem) in it",
                    config.keys_dir.display()
                );
                tracing::info!(dir = %config.keys_dir.display(), kids = ?keys.keys.keys().collect::<Vec<_>>(), "JWT keys loaded");
                Some((config, Arc::new(RwLock::new(keys))))
            }
            None => None,
        };
        let authenticator = Arc::new(Self { jwt, accept_certificates });
        if let Some((config, keys)) = &authenticator.jwt
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (config, keys) = (config.clone(), Arc::downgrade(keys));
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(reload_every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(keys) = keys.upgrade() else { return };
                    reload(&config, &keys);
                }
            });
        }
        Ok(authenticator)
    }

    fn verify(&self, token: &str) -> Result<Principal, String> {
        let Some((config, keys)) = &self.jwt else {
            return Err("this server accepts no tokens (it authenticates by client certificate)".to_owned());
        };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| format!("the token's header cannot be read ({error}); alg none is not accepted"))?;
        let pinned = config.algorithm.algorithm();
        if header.alg != pinned {
            return Err(format!("algorithm {:?} is not accepted (this server accepts {pinned:?})", header.alg));
        }
        let kid = header.kid.ok_or("the token names no key (kid)")?;
        let keys = keys.read().map_err(|_| "the key set is unavailable".to_owned())?;
        let key = keys.keys.get(&kid).ok_or_else(|| format!("unknown key id {:?}", truncated(&kid)))?;
        let mut validation = Validation::new(pinned);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|error| match error.kind() {
            ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
            ErrorKind::InvalidAudience => format!("wrong audience (this server is {:?})", config.audience),
            ErrorKind::InvalidIssuer => format!("wrong issuer (this server trusts {:?})", config.issuer),
            ErrorKind::InvalidSignature => "bad signature".to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
            _ => format!("the token is invalid ({error})"),
        })?;
        principal_of(claims.claims, kid)
    }
}

#[derive(Debug, serde::Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    jurisdiction: Vec<String>,
}

fn principal_of(claims: Claims, key_id: String) -> Result<Principal, String> {
    if claims.sub.trim().is_empty() {
        return Err("the token's sub is empty".to_owned());
    }
    let unknown: Vec<&str> = claims.roles.iter().filter(|r| Role::parse(r).is_none()).map(String::as_str).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        return Err(format!("unknown role(s) {} (roles are {})", truncated(&unknown.join(", ")), known.join(", ")));
    }
    let valid_code = |code: &String| {
        code == WHOLE_COUNTRY || (matches!(code.len(), 2 | 4 | 6) && code.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(bad) = claims.jurisdiction.iter().find(|code| !valid_code(code)) {
        return Err(format!(
            "jurisdiction {:?} is not a province, city or county code (2, 4 or 6 digits) or *",
            truncated(bad)
        ));
    }
    Ok(Principal {
        subject: claims.sub.chars().filter(|c| !c.is_control()).take(200).collect(),
        roles: claims.roles.iter().filter_map(|r| Role::parse(r)).collect(),
        jurisdiction: claims.jurisdiction,
        credential: Credential::Token { key_id },
    })
}

fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The subject CN of the client certificate the TLS listener verified, if any.
fn certificate_subject(extensions: &http::Extensions) -> Option<String> {
    let info =
        extensions.get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()?;
    let certificates = info.peer_certs()?;
    let first = certificates.first()?;
    let (_, certificate) = x509_parser::parse_x509_certificate(first.as_ref()).ok()?;
    let common_name = certificate.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok());
    Some(common_name.map_or_else(|| certificate.subject().to_string(), str::to_owned))
}

impl Authenticate for Authenticator {
    fn authenticate(&self, headers: &http::HeaderMap, extensions: &http::Extensions) -> Result<Principal, Status> {
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
                .ok_or_else(|| Status::unauthenticated("the authorization header is not `Bearer <JWT>`"))?;
            return self
                .verify(token.trim())
                .map_err(|reason| Status::unauthenticated(format!("token refused: {reason}")));
        }
        if self.accept_certificates
            && let Some(subject) = certificate_subject(extensions)
        {
            return Ok(Principal {
                subject: subject.clone(),
                roles: vec![Role::Service],
                jurisdiction: vec![WHOLE_COUNTRY.to_owned()],
                credential: Credential::Certificate { subject },
            });
        }
        Err(Status::unauthenticated("no credentials: send `authorization: Bearer <JWT>`"))
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((config, keys)) = &self.jwt {
            let count = keys.read().map(|k| k.keys.len()).unwrap_or(0);
            parts.push(format!(
                "jwt ({:?}, {count} keys, iss {}, aud {})",
                config.algorithm, config.issuer, config.audience
            ));
        }
        if self.accept_certificates {
            parts.push("client certificates".to_owned());
        }
        parts.join(" + ")
    }
}

fn stamp_of(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Option<SystemTime>, u64)>> {
    let mut stamp = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read the key directory {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "pem") {
            let meta = std::fs::metadata(&path)?;
            stamp.push((path, meta.modified().ok(), meta.len()));
        }
    }
    stamp.sort();
    Ok(stamp)
}

fn read_keys(dir: &Path, algorithm: PinnedAlgorithm) -> anyhow::Result<KeySet> {
    let stamp = stamp_of(dir)?;
    let mut keys = BTreeMap::new();
    for (path, _, _) in &stamp {
        let kid = path.file_stem().and_then(|s| s.to_str()).context("a key file name is not UTF-8")?.to_owned();
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = algorithm
            .key(&pem)
            .with_context(|| format!("{} is not a {algorithm:?} public key (PEM)", path.display()))?;
        keys.insert(kid, key);
    }
    Ok(KeySet { keys, stamp })
}

fn reload(config: &JwtConfig, keys: &RwLock<KeySet>) {
    let changed = match (stamp_of(&config.keys_dir), keys.read()) {
        (Ok(stamp), Ok(current)) => stamp != current.stamp,
        _ => true,
    };
    if !changed {
        return;
    }
    match read_keys(&config.keys_dir, config.algorithm) {
        Ok(fresh) if !fresh.keys.is_empty() => {
            tracing::info!(kids = ?fresh.keys.keys().collect::<Vec<_>>(), "JWT keys reloaded");
            if let Ok(mut current) = keys.write() {
                *current = fresh;
            }
        }
        Ok(_) => {
            tracing::error!(dir = %config.keys_dir.display(), "the key directory is empty; keeping the keys loaded before")
        }
        Err(error) => tracing::error!(
            error = format!("{error:#}"),
            "reloading the JWT keys failed; keeping the keys loaded before"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::{Request, Response, Status, server::NamedService as _};

    use crate::principal::{Credential, Principal, Role, WHOLE_COUNTRY};
    use crate::tls::{ClientTls, DevPki, ServerTlsArgs};

    /// A one-method service answering with who the authentication layer says is calling.
    #[derive(Clone)]
    struct WhoAmI;

    impl tonic::server::NamedService for WhoAmI {
        const NAME: &'static str = "test.WhoAmI";
    }

    impl tonic::codegen::Service<http::Request<tonic::body::Body>> for WhoAmI {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
            struct Answer;
            impl tonic::server::UnaryService<String> for Answer {
                type Response = String;
                type Future = std::future::Ready<Result<Response<String>, Status>>;
                fn call(&mut self, request: Request<String>) -> Self::Future {
                    let principal = Principal::of(&request).map(|p| format!("{p:?}")).unwrap_or_default();
                    std::future::ready(Ok(Response::new(principal)))
                }
            }
            let codec = tonic_prost::ProstCodec::<String, String>::default();
            Box::pin(async move { Ok(tonic::server::Grpc::new(codec).unary(Answer, request).await) })
        }
    }

    #[tokio::test]
    async fn a_verified_client_certificate_is_a_service_named_by_its_subject() {
        let temp = tempfile::tempdir().unwrap();
        let pki = DevPki::generate(temp.path()).unwrap();
        let (cert, key) = pki.cert("registry");
        let tls = ServerTlsArgs { tls_cert: Some(cert), tls_key: Some(key), tls_client_ca: Some(pki.ca_cert()) };
        let authenticator = super::Authenticator::new(None, true, Duration::from_secs(60)).unwrap();
        let server = crate::GrpcServer::bind("127.0.0.1:0".parse().unwrap(), WhoAmI::NAME)
            .await
            .unwrap()
            .with_tls(tls.load().unwrap())
            .authenticate_with(authenticator);
        let url = crate::client_url_with(server.local_addr(), true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(server.serve(
            tonic::service::Routes::new(WhoAmI),
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));

        let (client_cert, client_key) = pki.cert("townctl-client");
        let client =
            ClientTls { ca_cert: Some(pki.ca_cert()), client_cert: Some(client_cert), client_key: Some(client_key) };
        let channel = client.endpoint(&url).unwrap().connect().await.expect("mutual TLS with a certificate of the CA");
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let answer = grpc
            .unary(
                Request::new(String::new()),
                http::uri::PathAndQuery::from_static("/test.WhoAmI/Call"),
                tonic_prost::ProstCodec::<String, String>::default(),
            )
            .await
            .expect("a certificate of the CA authenticates")
            .into_inner();
        let expected = Principal {
            subject: "townctl-client".to_owned(),
            roles: vec![Role::Service],
            jurisdiction: vec![WHOLE_COUNTRY.to_owned()],
            credential: Credential::Certificate { subject: "townctl-client".to_owned() },
        };
        assert_eq!(answer, format!("{expected:?}"));

        let _ = stop.send(());
        served.await.unwrap().unwrap();
    }
}
