//! Proof of the audit log: the signing keys, the checkpoint task that signs the chain's head and keeps each
//! checkpoint in the database and in a file outside it, and the offline check behind `registry audit verify`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use township_runtime::auth::token::write_new;

use crate::domain::audit_chain::{ChainBreak, ChainHash, ChainVerifier, Checkpoint, Verified, sign_checkpoint};
use crate::store::Store;

/// Events read per query while verifying.
const VERIFY_PAGE: u32 = 10_000;

/// Writes a new Ed25519 key pair: `private` (PKCS#8 PEM, readable by its owner only) and `private` + `.pub`
/// (SPKI PEM, for whoever verifies). Refuses to overwrite either.
pub fn generate_key_pair(private: &Path) -> anyhow::Result<PathBuf> {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let public = public_key_path(private);
    let private_pem = key.to_pkcs8_pem(LineEnding::LF).context("encoding the private key")?;
    let public_pem = key.verifying_key().to_public_key_pem(LineEnding::LF).context("encoding the public key")?;
    write_new(private, private_pem.as_bytes(), 0o600)?;
    write_new(&public, public_pem.as_bytes(), 0o644)?;
    Ok(public)
}

fn public_key_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading the signing key {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 PEM private key: {e}", path.display()))
}

pub fn load_verifying_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading the public key {}", path.display()))?;
    VerifyingKey::from_public_key_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 SPKI PEM public key: {e}", path.display()))
}

/// One line of the checkpoint file.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointLine {
    seq: u64,
    hash: String,
    signed_at: i64,
    key_id: String,
    signature: String,
}

impl From<&Checkpoint> for CheckpointLine {
    fn from(checkpoint: &Checkpoint) -> Self {
        Self {
            seq: checkpoint.seq,
            hash: checkpoint.hash.to_hex(),
            signed_at: checkpoint.signed_at,
            key_id: checkpoint.key_id.clone(),
            signature: hex::encode(checkpoint.signature),
        }
    }
}

impl CheckpointLine {
    fn into_checkpoint(self) -> Option<Checkpoint> {
        Some(Checkpoint {
            seq: self.seq,
            hash: ChainHash::from_hex(&self.hash)?,
            signed_at: self.signed_at,
            key_id: self.key_id,
            signature: hex::decode(&self.signature).ok()?.try_into().ok()?,
        })
    }
}

/// Reads a checkpoint file (JSON lines); a missing file is an empty one.
pub fn read_checkpoint_file(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str::<CheckpointLine>(line)
                .ok()
                .and_then(CheckpointLine::into_checkpoint)
                .with_context(|| format!("{} line {}: not a checkpoint", path.display(), index + 1))
        })
        .collect()
}

fn append_checkpoint_file(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the checkpoint file {}", path.display()))?;
    let line = serde_json::to_string(&CheckpointLine::from(checkpoint))?;
    writeln!(file, "{line}")?;
    file.sync_all()?;
    Ok(())
}

/// Where and how often the registry signs its audit log.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    pub key: SigningKey,
    /// A file outside the database: a copy of every checkpoint that whoever rewrites the database cannot reach.
    pub file: PathBuf,
    pub interval: Duration,
}

/// Signs the head if events arrived since the last checkpoint; returns the new checkpoint, if any.
pub async fn checkpoint_once(store: &dyn Store, config: &CheckpointConfig) -> anyhow::Result<Option<Checkpoint>> {
    let (seq, hash) = store.audit_chain_head().await?;
    let last = store.list_audit_checkpoints().await?.last().map_or(0, |c| c.seq);
    if seq == 0 || seq <= last {
        return Ok(None);
    }
    let checkpoint = sign_checkpoint(&config.key, seq, hash, now_ms());
    store.record_audit_checkpoint(&checkpoint).await?;
    append_checkpoint_file(&config.file, &checkpoint)?;
    Ok(Some(checkpoint))
}

/// Signs checkpoints every `interval` until `shutdown`, then once more so that a clean stop leaves the whole
/// log covered.
pub async fn run_checkpoints(store: Arc<dyn Store>, config: CheckpointConfig, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            () = shutdown.cancelled() => true,
        };
        match checkpoint_once(store.as_ref(), &config).await {
            Ok(Some(checkpoint)) => tracing::info!(seq = checkpoint.seq, "audit checkpoint signed"),
            Ok(None) => {}
            Err(error) => tracing::error!(error = format!("{error:#}"), "audit checkpoint failed; will retry"),
        }
        if stopping {
            return;
        }
    }
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// What verifying a log found: a verified log, or the first break.
#[derive(Debug)]
pub enum Verification {
    Intact(Verified),
    Broken(ChainBreak),
}

/// Reads the whole chain from `store` and checks it against the checkpoints of the database and of `file`,
/// signed by one of `trusted`. A checkpoint in the file that the database lacks is checked like the others
/// (the database's copy may have been removed); the two copies of one seq must agree.
pub async fn verify(store: &dyn Store, file: &Path, trusted: &[VerifyingKey]) -> anyhow::Result<Verification> {
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    loop {
        let events = store.chained_audit_events(after, VERIFY_PAGE).await?;
        let Some(last) = events.last() else { break };
        after = last.seq;
        for event in &events {
            if let Err(broken) = verifier.push(event) {
                return Ok(Verification::Broken(broken));
            }
        }
    }
    let mut checkpoints = store.list_audit_checkpoints().await?;
    for from_file in read_checkpoint_file(file)? {
        match checkpoints.iter().find(|c| c.seq == from_file.seq) {
            Some(stored) if *stored != from_file => {
                return Ok(Verification::Broken(ChainBreak {
                    seq: from_file.seq,
                    reason: "the database's checkpoint differs from the file's copy".to_owned(),
                }));
            }
            Some(_) => {}
            None => checkpoints.push(from_file),
        }
    }
    checkpoints.sort_by_key(|c| c.seq);
    Ok(match verifier.finish(&checkpoints, trusted) {
        Ok(verified) => Verification::Intact(verified),
        Err(broken) => Verification::Broken(broken),
    })
}

/// Calls refused as unauthenticated, recorded in the audit log (等保 2.0: time, caller, event, outcome). At most
/// [`REFUSALS_PER_SECOND`] are written one by one each second, so that anonymous traffic cannot flood the log
/// or the single writer; the ones beyond are counted and the count goes into the next record.
pub struct AuditedRefusals {
    store: Arc<dyn Store>,
    window: std::sync::Mutex<RefusalWindow>,
}

/// Refusals recorded one by one per second, at most.
pub const REFUSALS_PER_SECOND: u32 = 20;

#[derive(Default)]
struct RefusalWindow {
    second: i64,
    recorded: u32,
    unrecorded: u64,
}

impl AuditedRefusals {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, window: std::sync::Mutex::new(RefusalWindow::default()) }
    }

    /// Whether this refusal is written, and how many were left unwritten before it.
    fn admit(&self) -> Option<u64> {
        let second = township_runtime::now_ms() / 1000;
        let mut window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.second != second {
            window.second = second;
            window.recorded = 0;
        }
        if window.recorded >= REFUSALS_PER_SECOND {
            window.unrecorded += 1;
            return None;
        }
        window.recorded += 1;
        Some(std::mem::take(&mut window.unrecorded))
    }
}

impl township_runtime::auth::RefusalLog for AuditedRefusals {
    fn refused(
        &self,
        method: String,
        reason: String,
        peer: Option<std::net::SocketAddr>,
    ) -> township_runtime::auth::Recording {
        let Some(unrecorded) = self.admit() else { return Box::pin(std::future::ready(())) };
        let store = self.store.clone();
        Box::pin(async move {
            let actor = peer.map_or_else(|| "unauthenticated".to_owned(), |peer| format!("unauthenticated ({peer})"));
            let action = format!("Unauthenticated {}", method.rsplit('/').next().unwrap_or(&method));
            let mut outcome = format!("UNAUTHENTICATED: {reason}");
            if unrecorded > 0 {
                outcome.push_str(&format!("; {unrecorded} more refused before this one were not recorded one by one"));
            }
            // The refusal stands whatever happens here; a log that cannot be written is the operator's alarm.
            if let Err(error) = store.record_refusal(&actor, &action, "", &outcome).await {
                tracing::error!(%error, "could not record a refused call in the audit log");
            }
        })
    }
}
