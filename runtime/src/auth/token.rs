//! Making the tokens [`super::jwt::Authenticator`] verifies, in one place: an Ed25519 signing key whose public
//! half goes into the servers' key directory as `<kid>.pem`, and tokens minted with it. `townctl token`,
//! `townctl up`, the compose secrets and the tests all sign here, so what they mint is what the servers accept.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use sha2::Digest as _;

use crate::principal::{Role, WHOLE_COUNTRY};

/// The issuer of tokens minted here (`iss`); servers trusting them run with `--auth-issuer townctl`.
pub const LOCAL_ISSUER: &str = "townctl";
/// The audience the registry requires by default.
pub const REGISTRY_AUDIENCE: &str = "township-registry";

/// An Ed25519 key that signs tokens; its `kid` is derived from the public key, so a token names the key that
/// verifies it without any other bookkeeping.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        Self::from_key(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    fn from_key(key: ed25519_dalek::SigningKey) -> Self {
        let digest = sha2::Sha256::digest(key.verifying_key().as_bytes());
        let kid = format!("ed25519-{}", hex::encode(&digest[..8]));
        Self { key, kid }
    }

    /// Reads a PKCS#8 PEM private key (as [`SigningKey::write_private`] writes it).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the signing key {}", path.display()))?;
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
            .map_err(|error| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 PEM private key: {error}", path.display()))?;
        Ok(Self::from_key(key))
    }

    /// The key id tokens carry in their header, and the file name (`<kid>.pem`) of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Writes the private key, PKCS#8 PEM, readable by its owner only; refuses to replace an existing file.
    pub fn write_private(&self, path: &Path) -> anyhow::Result<()> {
        let pem = self.key.to_pkcs8_pem(LineEnding::LF).context("encoding the signing key")?;
        write_new(path, pem.as_bytes(), 0o600)
    }

    /// Writes the public key (SPKI PEM) into `keys_dir` as `<kid>.pem`, the name the servers look it up by.
    pub fn write_public(&self, keys_dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(keys_dir).with_context(|| format!("cannot create {}", keys_dir.display()))?;
        let pem = self.key.verifying_key().to_public_key_pem(LineEnding::LF).context("encoding the public key")?;
        let path = keys_dir.join(format!("{}.pem", self.kid));
        std::fs::write(&path, pem).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// A signed token (EdDSA) for `grant`, valid from now for `grant.ttl`.
    pub fn mint(&self, grant: &Grant) -> anyhow::Result<String> {
        anyhow::ensure!(!grant.subject.trim().is_empty(), "a token needs a subject");
        anyhow::ensure!(!grant.roles.is_empty(), "a token needs at least one role");
        anyhow::ensure!(
            !grant.jurisdiction.is_empty(),
            "a token needs a jurisdiction (division codes or {WHOLE_COUNTRY})"
        );
        anyhow::ensure!(!grant.ttl.is_zero(), "a token's lifetime must be more than 0 s");
        let now = crate::now_ms() / 1000;
        let ttl = i64::try_from(grant.ttl.as_secs()).context("the lifetime is too long")?;
        let claims = MintedClaims {
            sub: &grant.subject,
            iss: &grant.issuer,
            aud: &grant.audience,
            iat: now,
            nbf: now,
            exp: now.checked_add(ttl).context("the lifetime is too long")?,
            roles: grant.roles.iter().map(|role| role.as_str()).collect(),
            jurisdiction: &grant.jurisdiction,
        };
        let header = jsonwebtoken::Header {
            kid: Some(self.kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA)
        };
        let pem = self.key.to_pkcs8_pem(LineEnding::LF).context("encoding the signing key")?;
        let key = jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).context("the signing key for JWTs")?;
        jsonwebtoken::encode(&header, &claims, &key).context("signing the token")
    }
}

/// What a token grants, to whom and for how long.
#[derive(Debug, Clone)]
pub struct Grant {
    pub subject: String,
    pub roles: Vec<Role>,
    /// Province, city or county codes, or `*`.
    pub jurisdiction: Vec<String>,
    pub ttl: Duration,
    pub issuer: String,
    pub audience: String,
}

impl Grant {
    /// Everything everywhere (`city_admin`, `*`), for the registry's audience and the local issuer.
    pub fn administrator(subject: &str, ttl: Duration) -> Self {
        Self::local(subject, Role::CityAdmin, ttl)
    }

    /// One role over the whole country, for the registry's audience and the local issuer.
    pub fn local(subject: &str, role: Role, ttl: Duration) -> Self {
        Self {
            subject: subject.to_owned(),
            roles: vec![role],
            jurisdiction: vec![WHOLE_COUNTRY.to_owned()],
            ttl,
            issuer: LOCAL_ISSUER.to_owned(),
            audience: REGISTRY_AUDIENCE.to_owned(),
        }
    }
}

#[derive(serde::Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    roles: Vec<&'static str>,
    jurisdiction: &'a [String],
}

/// The files of a token signing set in one directory: `signing.key` (private, 0600), `keys/<kid>.pem` (the
/// directory a server's `--auth-jwt-keys` reads; only public keys) and minted tokens `NAME.token` (0600).
#[derive(Debug, Clone)]
pub struct TokenDir {
    pub dir: PathBuf,
}

impl TokenDir {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.dir.join("signing.key")
    }

    /// What a server's `--auth-jwt-keys` names.
    pub fn public_keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    pub fn token_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.token"))
    }

    /// A new key pair; refuses to replace a signing key already there.
    pub fn generate(&self) -> anyhow::Result<SigningKey> {
        create_private_dir(&self.dir)?;
        let key = SigningKey::generate();
        key.write_private(&self.signing_key_path())?;
        key.write_public(&self.public_keys_dir())?;
        Ok(key)
    }

    /// The signing key already there (its public key written again, should it have been removed), or a new one.
    pub fn load_or_generate(&self) -> anyhow::Result<SigningKey> {
        if !self.signing_key_path().exists() {
            return self.generate();
        }
        let key = SigningKey::load(&self.signing_key_path())?;
        key.write_public(&self.public_keys_dir())?;
        Ok(key)
    }

    /// Mints `grant` into `NAME.token` (0600), replacing the token there; returns its path.
    pub fn mint_into(&self, key: &SigningKey, name: &str, grant: &Grant) -> anyhow::Result<PathBuf> {
        let token = key.mint(grant)?;
        let path = self.token_path(name);
        // Replaced by rename, so that a reader never sees half a token and the new file is 0600 from the start.
        let staging = self.dir.join(format!(".{name}.token.new"));
        let _ = std::fs::remove_file(&staging);
        write_new(&staging, format!("{token}\n").as_bytes(), 0o600)?;
        std::fs::rename(&staging, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// Reads a token file: its first line, trimmed.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_owned();
    anyhow::ensure!(!token.is_empty(), "the token file {} is empty", path.display());
    Ok(token)
}

/// Creates `dir` for its owner only (0700); a directory that exists already is left as it is.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes a file that must not exist yet, with `mode` (on Unix) from its creation on, and syncs it: how keys and
/// tokens are written, so that a secret is never readable by others, not even for a moment.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file =
        options.open(path).with_context(|| format!("cannot create {} (it must not exist)", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Authenticate as _;
    use crate::auth::jwt::{Authenticator, JwtConfig, PinnedAlgorithm};
    use crate::principal::Credential;

    fn authenticator(dir: &TokenDir) -> std::sync::Arc<Authenticator> {
        let config = JwtConfig {
            keys_dir: dir.public_keys_dir(),
            algorithm: PinnedAlgorithm::EdDsa,
            issuer: LOCAL_ISSUER.to_owned(),
            audience: REGISTRY_AUDIENCE.to_owned(),
        };
        Authenticator::new(Some(config), false, Duration::from_secs(60)).unwrap()
    }

    fn bearer(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn a_minted_token_verifies_as_its_grant() {
        let temp = tempfile::tempdir().unwrap();
        let dir = TokenDir::new(&temp.path().join("auth"));
        let key = dir.generate().unwrap();
        let grant = Grant {
            subject: "li.si".to_owned(),
            roles: vec![Role::CountyEditor, Role::Viewer],
            jurisdiction: vec!["430181".to_owned()],
            ttl: Duration::from_secs(8 * 3600),
            issuer: LOCAL_ISSUER.to_owned(),
            audience: REGISTRY_AUDIENCE.to_owned(),
        };
        let token = key.mint(&grant).unwrap();

        let principal = authenticator(&dir).authenticate(&bearer(&token), &http::Extensions::new()).unwrap();
        assert_eq!(principal.subject, "li.si");
        assert_eq!(principal.roles, vec![Role::CountyEditor, Role::Viewer]);
        assert_eq!(principal.jurisdiction, vec!["430181".to_owned()]);
        assert_eq!(principal.credential, Credential::Token { key_id: key.kid().to_owned() });
    }

    #[test]
    fn a_token_of_another_audience_or_key_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let dir = TokenDir::new(temp.path());
        let key = dir.generate().unwrap();
        let authenticator = authenticator(&dir);
        let mut for_the_classifier = Grant::administrator("admin", Duration::from_secs(60));
        for_the_classifier.audience = "township-classifier".to_owned();
        let refused = authenticator
            .authenticate(&bearer(&key.mint(&for_the_classifier).unwrap()), &http::Extensions::new())
            .unwrap_err();
        assert!(refused.message().contains("wrong audience"), "{refused:?}");

        let stranger = SigningKey::generate();
        let refused = authenticator
            .authenticate(
                &bearer(&stranger.mint(&Grant::administrator("admin", Duration::from_secs(60))).unwrap()),
                &http::Extensions::new(),
            )
            .unwrap_err();
        assert!(refused.message().contains("unknown key id"), "{refused:?}");
    }

    #[cfg(unix)]
    #[test]
    fn the_signing_key_and_tokens_are_readable_by_their_owner_only_and_the_key_is_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let temp = tempfile::tempdir().unwrap();
        let dir = TokenDir::new(&temp.path().join("auth"));
        let key = dir.load_or_generate().unwrap();
        let path = dir.mint_into(&key, "admin", &Grant::administrator("admin", Duration::from_secs(60))).unwrap();
        let again = dir.load_or_generate().unwrap();
        assert_eq!(again.kid(), key.kid(), "the key is reused, not replaced");
        dir.mint_into(&again, "admin", &Grant::administrator("admin", Duration::from_secs(60))).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.signing_key_path()), 0o600);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.dir), 0o700);
        assert!(dir.public_keys_dir().join(format!("{}.pem", key.kid())).is_file());
        assert!(dir.generate().is_err(), "keygen never replaces a signing key");
        assert!(read_token_file(&path).unwrap().starts_with("ey"));
    }
}
