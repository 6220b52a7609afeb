//! A development PKI in a temporary directory (`township_runtime::tls::DevPki`, as `townctl up` makes it) and an
//! unrelated "stranger" CA, for tests over real TLS on loopback.

use std::path::PathBuf;

use township_runtime::tls::{ClientTls, DevPki, ServerTlsArgs};

pub struct TestPki {
    _dir: tempfile::TempDir,
    pub pki: DevPki,
    pub stranger: DevPki,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pki = DevPki::generate(dir.path()).expect("the development PKI");
        let stranger = DevPki::generate_stranger(dir.path()).expect("the stranger's PKI");
        Self { _dir: dir, pki, stranger }
    }

    /// The TLS flags of server `name` (`classifier` or `registry`); `mutual` requires client certificates of
    /// this PKI.
    pub fn server(&self, name: &str, mutual: bool) -> ServerTlsArgs {
        let (cert, key) = self.pki.cert(name);
        ServerTlsArgs { tls_cert: Some(cert), tls_key: Some(key), tls_client_ca: mutual.then(|| self.pki.ca_cert()) }
    }

    /// A client trusting this PKI's CA, presenting the certificate `name` (e.g. `registry-client`) if given.
    pub fn client(&self, name: Option<&str>) -> ClientTls {
        let (client_cert, client_key) = name.map(|name| self.pki.cert(name)).unzip();
        ClientTls { ca_cert: Some(self.pki.ca_cert()), client_cert, client_key }
    }

    /// A client trusting this PKI's CA but presenting a certificate from another CA.
    pub fn stranger_client(&self) -> ClientTls {
        let (cert, key) = self.stranger.cert("stranger-client");
        ClientTls { ca_cert: Some(self.pki.ca_cert()), client_cert: Some(cert), client_key: Some(key) }
    }

    /// A client that trusts only the stranger's CA.
    pub fn trusting_the_stranger(&self) -> ClientTls {
        ClientTls { ca_cert: Some(self.stranger.ca_cert()), ..ClientTls::default() }
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.pki.ca_cert()
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
