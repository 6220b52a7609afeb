//! Connecting to the two services: endpoints, TLS, the acting user, and errors a person can act on.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use sha2::Digest as _;
use tonic::{Status, metadata::AsciiMetadataValue, service::interceptor::InterceptedService, transport::Channel};
use tonic_types::StatusExt as _;
use township_proto::classifier::v1::classifier_service_client::ClassifierServiceClient;
use township_proto::registry::v1::registry_service_client::RegistryServiceClient;
use township_runtime::tls::ClientTls;

/// Large enough for a province's classification run (its inputs and results) in one message.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Connection {
    /// The registry's gRPC endpoint; `https://` uses TLS, `http://` plaintext.
    #[arg(long, global = true, env = "TOWNCTL_REGISTRY_URL", default_value = "https://127.0.0.1:50052")]
    pub registry: String,
    /// The classifier's gRPC endpoint; `https://` uses TLS, `http://` plaintext.
    #[arg(long, global = true, env = "TOWNCTL_CLASSIFIER_URL", default_value = "https://127.0.0.1:50051")]
    pub classifier: String,
    /// PEM file of the certificate authority to trust for `https://` endpoints. Default: `data/pki/ca.pem`
    /// when it exists (the development CA `townctl up` makes in its data directory), else the system's roots.
    #[arg(long, global = true, env = "TOWNCTL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires one (the classifier, under mutual TLS). Default:
    /// `data/pki/townctl-client.pem` when it exists.
    #[arg(long, global = true, env = "TOWNCTL_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Key of --client-cert.
    #[arg(long, global = true, env = "TOWNCTL_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Who is acting: recorded with every write in the registry's audit log.
    #[arg(long, global = true, env = "TOWNCTL_ACTOR", default_value_t = default_actor())]
    pub actor: String,
    /// Deadline of each call, in seconds.
    #[arg(long, global = true, env = "TOWNCTL_TIMEOUT_SECONDS", default_value_t = 60)]
    pub timeout_seconds: u64,
    /// The JWT to present to the registry (`authorization: Bearer …`); `townctl token mint` makes one. Default: the token in
    /// --token-file, else `data/auth/admin.token` when it exists (the administrator's token `townctl up` mints).
    #[arg(long, global = true, env = "TOWNCTL_TOKEN", hide_env_values = true, value_parser = Token::parse, conflicts_with = "token_file")]
    pub token: Option<Token>,
    /// A file whose first line is the JWT to present.
    #[arg(long, global = true, env = "TOWNCTL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// A bearer token: never printed, not even in debug output.
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    #[cfg(feature = "up")]
    pub(crate) fn new(token: String) -> Self {
        Self(token)
    }

    fn parse(text: &str) -> Result<Token, String> {
        let token = text.trim();
        if token.is_empty() {
            return Err("the token is empty".to_owned());
        }
        Ok(Token(token.strip_prefix("Bearer ").unwrap_or(token).to_owned()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

fn default_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    format!("townctl:{user}")
}

/// Adds to every registry call the `x-actor` header the registry records in its audit log and the bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    actor: AsciiMetadataValue,
    bearer: Option<AsciiMetadataValue>,
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request.metadata_mut().insert("x-actor", self.actor.clone());
        if let Some(bearer) = &self.bearer {
            request.metadata_mut().insert("authorization", bearer.clone());
        }
        Ok(request)
    }
}

pub(crate) type Registry = RegistryServiceClient<InterceptedService<Channel, Credentials>>;
pub(crate) type Classifier = ClassifierServiceClient<Channel>;

impl Connection {
    pub(crate) async fn registry(&self) -> anyhow::Result<Registry> {
        let credentials = self.credentials()?;
        let channel = self.channel("registry", &self.registry).await?;
        Ok(RegistryServiceClient::with_interceptor(channel, credentials)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// No token: the classifier knows townctl by its client certificate, and a token is for one audience (the
    /// registry's), which a classifier refuses (without keys: "accepts no tokens"; with them: wrong audience).
    pub(crate) async fn classifier(&self) -> anyhow::Result<Classifier> {
        let channel = self.channel("classifier", &self.classifier).await?;
        Ok(ClassifierServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn credentials(&self) -> anyhow::Result<Credentials> {
        // Metadata must be ASCII; a Chinese actor name is sent percent-encoded.
        let actor = AsciiMetadataValue::try_from(percent_encode(&self.actor))
            .with_context(|| format!("--actor {:?} cannot be sent as a header", self.actor))?;
        let bearer = match self.bearer_token()? {
            Some(Token(token)) => {
                // The error names the flag, never the value.
                let mut value = AsciiMetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| anyhow::anyhow!("the token (--token / --token-file) is not ASCII text"))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Credentials { actor, bearer })
    }

    /// --token, else --token-file, else the administrator's token `townctl up` minted, when it is here.
    fn bearer_token(&self) -> anyhow::Result<Option<Token>> {
        if let Some(token) = &self.token {
            return Ok(Some(token.clone()));
        }
        match self.token_file.clone().or_else(|| existing(DEV_ADMIN_TOKEN)) {
            Some(path) => Ok(Some(Token(township_runtime::auth::token::read_token_file(&path)?))),
            None => Ok(None),
        }
    }

    async fn channel(&self, service: &str, url: &str) -> anyhow::Result<Channel> {
        let flag = if service == "registry" {
            "--registry / TOWNCTL_REGISTRY_URL"
        } else {
            "--classifier / TOWNCTL_CLASSIFIER_URL"
        };
        // Flags first; else the development PKI `townctl up` made, when it is here.
        let (client_cert, client_key) = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => (Some(cert.clone()), Some(key.clone())),
            _ => existing(DEV_CLIENT_CERT).zip(existing(DEV_CLIENT_KEY)).unzip(),
        };
        let tls = ClientTls { ca_cert: self.ca_cert.clone().or_else(|| existing(DEV_CA)), client_cert, client_key };
        let endpoint = tls
            .endpoint(url)
            .with_context(|| format!("the {service} address {url:?} (set {flag})"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(self.timeout_seconds));
        endpoint.connect().await.map_err(|error| {
            anyhow::anyhow!(
                "cannot reach the {service} at {url}: {}. Is it running? `townctl up` starts both services; set {flag} \
                 to use another address",
                source_chain(&error)
            )
        })
    }
}

/// The development PKI `townctl up` makes in its default data directory, used when no flag says otherwise.
const DEV_CA: &str = "data/pki/ca.pem";
const DEV_CLIENT_CERT: &str = "data/pki/townctl-client.pem";
const DEV_CLIENT_KEY: &str = "data/pki/townctl-client.key";
/// The administrator's token `townctl up` mints into its default data directory.
const DEV_ADMIN_TOKEN: &str = "data/auth/admin.token";

fn existing(path: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    path.exists().then_some(path)
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Non-ASCII bytes, controls and `%` itself are escaped; the registry decodes the header back to UTF-8.
const HEADER_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, HEADER_ESCAPES).to_string()
}

/// `create` with its `request_id` (AIP-155), set through `id`: a hash of the create without one, so that a call
/// made again after a transient failure carries the same id and the registry answers it with the first call's
/// answer instead of creating everything twice. The hash is keyed by this run of townctl: a later run sending the
/// same records (the figures of an earlier import, after others replaced them) has them made again, not answered
/// with what the registry remembers of the earlier run.
pub(crate) fn with_request_id<M: prost::Message>(mut create: M, id: impl Fn(&mut M) -> &mut String) -> M {
    *id(&mut create) = request_id(&create);
    create
}

fn request_id(create: &impl prost::Message) -> String {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        format!("{} {}", std::process::id(), started.as_nanos())
    });
    let digest = sha2::Sha256::new().chain_update(run).chain_update(create.encode_to_vec()).finalize();
    // 32 hex digits: within the 1–64 letters, digits, '-' and '_' a request id may have.
    hex::encode(&digest[..16])
}

/// A failed call, worded for a person: the service's message and every field violation it listed.
pub(crate) fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            text.push_str(&format!("\n  {}: {}", violation.field, violation.description));
        }
    }
    text
}

/// A failed call and what was being done, keeping the status for callers that tell codes apart.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed: {}", describe(status))]
pub(crate) struct CallError {
    what: String,
    status: Status,
}

/// Turns a failed call into an error naming what was being done.
pub(crate) fn call_error(what: impl std::fmt::Display) -> impl FnOnce(Status) -> anyhow::Error {
    move |status| CallError { what: what.to_string(), status }.into()
}

/// Whether the error is a call answered NOT_FOUND.
pub(crate) fn is_not_found(error: &anyhow::Error) -> bool {
    error.downcast_ref::<CallError>().is_some_and(|e| e.status.code() == tonic::Code::NotFound)
}

/// A resource name from what a person types: a code (`4301`, `430102`, `430102001`) or a resource name.
pub(crate) fn scope_name(text: &str) -> anyhow::Result<String> {
    let text = text.trim().trim_end_matches('/');
    if text.starts_with("cities/") {
        return Ok(text.to_owned());
    }
    anyhow::ensure!(
        text.bytes().all(|b| b.is_ascii_digit()),
        "{text:?} is neither a division code nor a resource name"
    );
    Ok(match text.len() {
        4 => format!("cities/{text}"),
        6 => format!("cities/{}/counties/{text}", &text[..4]),
        9 => format!("cities/{}/counties/{}/townships/{text}", &text[..4], &text[..6]),
        other => anyhow::bail!(
            "{text:?} has {other} digits: a city code has 4 (4301), a county's 6 (430102), a township's 9 (430102001)"
        ),
    })
}

/// The city a scope belongs to: `cities/4301` for anything under it.
pub(crate) fn city_of(scope: &str) -> String {
    scope.split('/').take(2).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_every_level_become_resource_names() {
        assert_eq!(scope_name("4301").unwrap(), "cities/4301");
        assert_eq!(scope_name("430102").unwrap(), "cities/4301/counties/430102");
        assert_eq!(scope_name("430102001").unwrap(), "cities/4301/counties/430102/townships/430102001");
        assert_eq!(scope_name("cities/4301/").unwrap(), "cities/4301");
        let error = scope_name("43010").unwrap_err().to_string();
        assert!(error.contains("5 digits"), "{error}");
        assert!(scope_name("长沙").is_err());
        assert_eq!(city_of("cities/4301/counties/430102"), "cities/4301");
    }

    #[test]
    fn request_ids_are_the_same_for_the_same_create_and_well_formed() {
        use township_proto::registry::v1 as pb;
        let create = |holder: &str| pb::BatchCreateLeadershipPostsRequest {
            requests: vec![pb::CreateLeadershipPostRequest {
                parent: "cities/4301/counties/430102/townships/430102001".to_owned(),
                post: Some(pb::LeadershipPost {
                    role: "党工委书记".to_owned(),
                    holder: holder.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let id = |holder| with_request_id(create(holder), |r| &mut r.request_id).request_id;
        assert_eq!(id("张三"), id("张三"), "a retry carries the same id");
        assert_ne!(id("张三"), id("李四"));
        let id = id("张三");
        assert!(id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }

    #[test]
    fn actors_with_chinese_names_are_sent_as_ascii() {
        assert_eq!(percent_encode("张 三"), "%E5%BC%A0 %E4%B8%89");
        assert_eq!(percent_encode("alice@example.org"), "alice@example.org");
    }
}
