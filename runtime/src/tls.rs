//! TLS for both services (rustls through tonic): a server's certificate and key, and optionally the CA whose
//! client certificates it requires (mutual TLS, how services authenticate each other); the client side a caller
//! uses for `https://` URLs; and a development PKI for `townctl up`, the compose proof and the tests.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// A server's TLS flags (both services flatten these into their serve arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerTlsArgs {
    /// PEM certificate chain this server presents; with --tls-key, the port speaks TLS only.
    #[arg(long, env = "TLS_CERT_FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TLS_KEY_FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): clients must present a certificate one of them signed (mutual TLS).
    #[arg(long, env = "TLS_CLIENT_CA_FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// A loaded server TLS configuration.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub(crate) config: ServerTlsConfig,
    /// Whether client certificates are required.
    pub mutual: bool,
}

impl ServerTlsArgs {
    /// None when no certificate is configured (the port then speaks plaintext, and the server warns).
    pub fn load(&self) -> anyhow::Result<Option<ServerTls>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let identity = Identity::from_pem(read_pem(cert, "--tls-cert")?, read_pem(key, "--tls-key")?);
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.tls_client_ca {
            config = config.client_ca_root(Certificate::from_pem(read_pem(ca, "--tls-client-ca")?));
        }
        Ok(Some(ServerTls { config, mutual: self.tls_client_ca.is_some() }))
    }

    /// Whether client certificates will be required (the classifier then counts them as authentication).
    pub fn requires_client_certificates(&self) -> bool {
        self.tls_client_ca.is_some()
    }
}

/// Reads a PEM file, refusing an unreadable or non-PEM one with an error naming the flag and the file.
fn read_pem(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("{flag}: cannot read {}", path.display()))?;
    anyhow::ensure!(
        String::from_utf8_lossy(&bytes).contains("-----BEGIN "),
        "{flag}: {} is not a PEM file (no -----BEGIN line)",
        path.display()
    );
    Ok(bytes)
}

/// How a client reaches `https://` endpoints: the CA it trusts (else the system's roots) and, for mutual TLS,
/// its own certificate and key. `http://` endpoints stay plaintext.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl ClientTls {
    /// An endpoint for `url`, with TLS when it is `https://`.
    pub fn endpoint(&self, url: &str) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_shared(url.to_owned()).with_context(|| format!("invalid endpoint {url}"))?;
        if !url.starts_with("https://") {
            return Ok(endpoint);
        }
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &self.ca_cert {
            tls = tls.ca_certificate(Certificate::from_pem(read_pem(ca, "CA certificate")?));
        }
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                tls = tls
                    .identity(Identity::from_pem(read_pem(cert, "client certificate")?, read_pem(key, "client key")?));
            }
            (None, None) => {}
            _ => anyhow::bail!("a client certificate needs its key, and a key its certificate"),
        }
        endpoint.tls_config(tls).with_context(|| format!("TLS settings for {url}"))
    }
}

/// The TLS flags of a `healthcheck` subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HealthcheckTlsArgs {
    /// PEM CA certificate to trust for an `https://` URL (default: the system's roots).
    #[arg(long, env = "HEALTHCHECK_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires one.
    #[arg(long, env = "HEALTHCHECK_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Key of --cert.
    #[arg(long, env = "HEALTHCHECK_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
}

impl HealthcheckTlsArgs {
    pub fn client(&self) -> ClientTls {
        ClientTls { ca_cert: self.ca_cert.clone(), client_cert: self.cert.clone(), client_key: self.key.clone() }
    }
}

/// The files of a development PKI, as [`DevPki::generate`] writes them into one directory.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub dir: PathBuf,
}

/// Where a certificate of the development PKI is used.
#[derive(Debug, Clone, Copy)]
enum Usage {
    Server,
    Client,
}

impl DevPki {
    /// The CA every certificate of the PKI is signed by.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `name.pem` and `name.key` (e.g. `classifier`, `registry`, `registry-client`).
    pub fn cert(&self, name: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")))
    }

    /// Writes, unless `dir/ca.pem` exists already (then the PKI is reused as it is): a CA (`ca.pem`, `ca.key`),
    /// server certificates `classifier` and `registry` (names `localhost`, `127.0.0.1` and the service's own, as
    /// compose names it), and client certificates `registry-client` (the registry calling the classifier) and
    /// `townctl-client`. For development and proofs only: production uses the city's CA. Keys are mode 0600.
    pub fn generate(dir: &Path) -> anyhow::Result<DevPki> {
        let pki = DevPki { dir: dir.to_owned() };
        if pki.ca_cert().exists() {
            return Ok(pki);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let (ca_params, ca_key) = ca_params("Township development CA")?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaves = [
            ("classifier", Usage::Server),
            ("registry", Usage::Server),
            ("registry-client", Usage::Client),
            ("townctl-client", Usage::Client),
        ];
        for (name, usage) in leaves {
            let (cert, key) = leaf(name, usage, &issuer)?;
            write_file(&pki.cert(name).0, cert.as_bytes(), false)?;
            write_file(&pki.cert(name).1, key.as_bytes(), true)?;
        }
        write_file(&dir.join("ca.key"), issuer.key().serialize_pem().as_bytes(), true)?;
        // Last: its presence says the PKI is complete.
        write_file(&pki.ca_cert(), ca_cert.pem().as_bytes(), false)?;
        Ok(pki)
    }

    /// Another, unrelated CA with one client certificate (`stranger-client`), for tests that a server trusts
    /// only its own CA. Written into `dir/stranger/`.
    pub fn generate_stranger(dir: &Path) -> anyhow::Result<DevPki> {
        let pki = DevPki { dir: dir.join("stranger") };
        std::fs::create_dir_all(&pki.dir).with_context(|| format!("cannot create {}", pki.dir.display()))?;
        let (ca_params, ca_key) = ca_params("Someone else's CA")?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        for (name, usage) in [("stranger-client", Usage::Client), ("stranger-server", Usage::Server)] {
            let (cert, key) = leaf(name, usage, &issuer)?;
            write_file(&pki.cert(name).0, cert.as_bytes(), false)?;
            write_file(&pki.cert(name).1, key.as_bytes(), true)?;
        }
        write_file(&pki.ca_cert(), ca_cert.pem().as_bytes(), false)?;
        Ok(pki)
    }
}

fn ca_params(name: &str) -> anyhow::Result<(rcgen::CertificateParams, rcgen::KeyPair)> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    Ok((params, rcgen::KeyPair::generate()?))
}

/// A certificate and its key (PEM) for `name`, signed by `issuer`.
fn leaf(name: &str, usage: Usage, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) -> anyhow::Result<(String, String)> {
    let names = match usage {
        Usage::Server => vec![name.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned()],
        Usage::Client => vec![name.to_owned()],
    };
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![match usage {
        Usage::Server => rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    }];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents).with_context(|| format!("cannot write {}", path.display()))
}
