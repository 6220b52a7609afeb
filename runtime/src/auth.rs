//! Authentication as a tower layer: before any handler runs, the server's [`Authenticate`] turns what the caller
//! presented (an `authorization: Bearer` token, a verified client certificate) into a [`Principal`] that the
//! handler finds in the request's extensions, or answers the call itself with `UNAUTHENTICATED`. Health and
//! reflection are open: probes and tools call them without credentials, and they reveal no record.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use crate::principal::{Credential, Principal, Role, WHOLE_COUNTRY};

pub mod jwt;
pub mod token;

/// How a server authenticates its callers (both services flatten these into their serve arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthArgs {
    /// Directory of the public keys that sign callers' JWTs: `<kid>.pem` each; re-read when it changes, so
    /// keys rotate without a restart.
    #[arg(long, env = "AUTH_JWT_KEYS_DIR", requires = "auth_issuer")]
    pub auth_jwt_keys: Option<std::path::PathBuf>,
    /// The one algorithm tokens must be signed with.
    #[arg(long, env = "AUTH_ALGORITHM", value_enum, default_value = "EdDSA")]
    pub auth_algorithm: Option<jwt::PinnedAlgorithm>,
    /// The issuer (`iss`) tokens must name.
    #[arg(long, env = "AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// The audience (`aud`) tokens must name; default: the service's own name.
    #[arg(long, env = "AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// Seconds between checks of the key directory for changes.
    #[arg(long, env = "AUTH_KEYS_RELOAD_SECONDS", default_value_t = 5)]
    pub auth_keys_reload_seconds: u64,
    /// Let every caller do anything, without credentials. Never in production: the server logs an error at
    /// start and names it in its serving line.
    #[arg(long, env = "INSECURE_NO_AUTH", conflicts_with = "auth_jwt_keys")]
    pub insecure_no_auth: bool,
}

impl AuthArgs {
    /// The authenticator these flags choose. `client_certificates_verified`: the TLS listener requires client
    /// certificates of a trusted CA, which then authenticate services. A server given no way to authenticate
    /// refuses to start rather than run open.
    pub fn authenticator(
        &self,
        default_audience: &str,
        client_certificates_verified: bool,
    ) -> anyhow::Result<Arc<dyn Authenticate>> {
        if self.insecure_no_auth {
            tracing::error!("--insecure-no-auth: starting WITHOUT authentication, every caller may do anything");
            return Ok(Arc::new(AuthDisabled));
        }
        let jwt = match (&self.auth_jwt_keys, &self.auth_issuer) {
            (Some(dir), Some(issuer)) => Some(jwt::JwtConfig {
                keys_dir: dir.clone(),
                algorithm: self.auth_algorithm.unwrap_or(jwt::PinnedAlgorithm::EdDsa),
                issuer: issuer.clone(),
                audience: self.auth_audience.clone().unwrap_or_else(|| default_audience.to_owned()),
            }),
            _ => None,
        };
        anyhow::ensure!(
            jwt.is_some() || client_certificates_verified,
            "refusing to start without a way to authenticate callers: pass --auth-jwt-keys DIR and --auth-issuer \
             ISS (callers present JWTs; `townctl token init DIR` makes a key and tokens), or --tls-client-ca \
             (callers present client certificates), or --insecure-no-auth to let anyone do anything (never in \
             production)"
        );
        let reload = std::time::Duration::from_secs(self.auth_keys_reload_seconds.max(1));
        Ok(jwt::Authenticator::new(jwt, client_certificates_verified, reload)?)
    }
}

/// Decides who a caller is from the request's headers and connection (the client certificate a TLS
/// listener verified is in `extensions`).
pub trait Authenticate: Send + Sync + 'static {
    fn authenticate(
        &self,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<Principal, tonic::Status>;

    /// How the serving log describes this authentication, e.g. `jwt (EdDSA, 2 keys)` or `DISABLED`.
    fn describe(&self) -> String;

    /// True only for [`AuthDisabled`]: the server then logs loudly that anyone may do anything.
    fn is_disabled(&self) -> bool {
        false
    }
}

/// Every caller is the same all-powerful principal. Only for `--insecure-no-auth` and in-process tests; the
/// server logs an error at start when it runs this way.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthDisabled;

impl AuthDisabled {
    pub fn principal() -> Principal {
        Principal {
            subject: "anonymous".to_owned(),
            roles: Role::ALL.to_vec(),
            jurisdiction: vec![WHOLE_COUNTRY.to_owned()],
            credential: Credential::AuthDisabled,
        }
    }
}

impl Authenticate for AuthDisabled {
    fn authenticate(&self, _: &http::HeaderMap, _: &http::Extensions) -> Result<Principal, tonic::Status> {
        Ok(Self::principal())
    }

    fn describe(&self) -> String {
        "DISABLED".to_owned()
    }

    fn is_disabled(&self) -> bool {
        true
    }
}

/// Where a server records the calls its authentication refused (the registry: its audit log). The refusal is
/// answered only once `refused` has finished, so a recorded refusal is durable before the caller hears of it.
pub trait RefusalLog: Send + Sync {
    fn refused(&self, method: String, reason: String, peer: Option<std::net::SocketAddr>) -> Recording;
}

/// The work of recording one refusal.
pub type Recording = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// The caller's address, as tonic records it for plaintext and TLS connections.
fn peer_of(extensions: &http::Extensions) -> Option<std::net::SocketAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|info| info.get_ref().remote_addr()))
}

/// Paths served without credentials.
fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// The layer `GrpcServer` puts in front of every route.
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<dyn Authenticate>,
    refusals: Option<Arc<dyn RefusalLog>>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer").field("authenticator", &self.authenticator.describe()).finish()
    }
}

impl AuthLayer {
    pub fn new(authenticator: Arc<dyn Authenticate>, refusals: Option<Arc<dyn RefusalLog>>) -> Self {
        Self { authenticator, refusals }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, authenticator: self.authenticator.clone(), refusals: self.refusals.clone() }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<dyn Authenticate>,
    refusals: Option<Arc<dyn RefusalLog>>,
}

impl<S> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        S::Future,
        futures_util::future::BoxFuture<'static, Result<http::Response<tonic::body::Body>, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if is_open(request.uri().path()) {
            return futures_util::future::Either::Left(self.inner.call(request));
        }
        match self.authenticator.authenticate(request.headers(), request.extensions()) {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                futures_util::future::Either::Left(self.inner.call(request))
            }
            Err(status) => {
                let method = request.uri().path().to_owned();
                tracing::info!(%method, reason = %status.message(), "unauthenticated call refused");
                let recorded = self
                    .refusals
                    .as_ref()
                    .map(|log| log.refused(method, status.message().to_owned(), peer_of(request.extensions())));
                futures_util::future::Either::Right(Box::pin(async move {
                    if let Some(recorded) = recorded {
                        recorded.await;
                    }
                    Ok(status.into_http())
                }))
            }
        }
    }
}
