//! The audit log's tamper evidence: every event is hashed together with the previous event's hash, and the
//! chain's head is signed from time to time (a checkpoint). Changing, removing or reordering any event changes
//! every hash after it; cutting the tail is caught by the last checkpoint that covered it.
//!
//! The encodings are fixed and domain-separated (a distinct prefix for events and checkpoints, every field
//! length-prefixed), so no two different events, and no event and checkpoint, hash or sign the same bytes.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::model::AuditEvent;

const EVENT_DOMAIN: &[u8] = b"township-registry/audit-event/v1\0";
const CHECKPOINT_DOMAIN: &[u8] = b"township-registry/audit-checkpoint/v1\0";

/// A SHA-256 digest in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The "previous hash" of the first event.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
        Some(ChainHash(bytes))
    }
}

/// An audit event as chained: its place in the log and the hashes that bind it there.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent {
    /// 1, 2, 3 … with no gap.
    pub seq: u64,
    pub event: AuditEvent,
    pub prev_hash: ChainHash,
    pub hash: ChainHash,
}

fn put_field(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    buffer.extend_from_slice(bytes);
}

fn put_optional(buffer: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => buffer.push(0),
        Some(text) => {
            buffer.push(1);
            put_field(buffer, text.as_bytes());
        }
    }
}

/// The hash of the event at `seq` following `prev`. The row id is not hashed: it is the database's, and the
/// sequence number is the event's place in the log.
pub fn event_hash(prev: ChainHash, seq: u64, event: &AuditEvent) -> ChainHash {
    let mut buffer = Vec::with_capacity(256);
    buffer.extend_from_slice(EVENT_DOMAIN);
    buffer.extend_from_slice(&prev.0);
    buffer.extend_from_slice(&seq.to_be_bytes());
    put_field(&mut buffer, event.actor.as_bytes());
    buffer.extend_from_slice(&event.at.to_be_bytes());
    put_field(&mut buffer, event.action.as_bytes());
    put_field(&mut buffer, event.resource.as_bytes());
    put_optional(&mut buffer, event.before.as_deref());
    put_optional(&mut buffer, event.after.as_deref());
    ChainHash(Sha256::digest(&buffer).into())
}

/// A signed statement that the log's event `seq` has hash `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: ChainHash,
    /// Milliseconds since the Unix epoch.
    pub signed_at: i64,
    /// Which key signed: the hex SHA-256 of its public key, first 16 characters.
    pub key_id: String,
    pub signature: [u8; 64],
}

fn checkpoint_message(seq: u64, hash: ChainHash, signed_at: i64, key_id: &str) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(128);
    buffer.extend_from_slice(CHECKPOINT_DOMAIN);
    buffer.extend_from_slice(&seq.to_be_bytes());
    buffer.extend_from_slice(&hash.0);
    buffer.extend_from_slice(&signed_at.to_be_bytes());
    put_field(&mut buffer, key_id.as_bytes());
    buffer
}

/// The id a key is known by in checkpoints.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_owned()
}

pub fn sign_checkpoint(key: &SigningKey, seq: u64, hash: ChainHash, signed_at: i64) -> Checkpoint {
    let key_id = key_id(&key.verifying_key());
    let signature = key.sign(&checkpoint_message(seq, hash, signed_at, &key_id)).to_bytes();
    Checkpoint { seq, hash, signed_at, key_id, signature }
}

/// Why a log does not verify: the first sequence number at which it goes wrong, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at seq {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: u64,
    pub reason: String,
}

/// What a verified log showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub events: u64,
    pub head: ChainHash,
    pub checkpoints: usize,
    /// The highest sequence number a valid checkpoint vouches for (0: none).
    pub covered_to: u64,
}

/// Checks the chain incrementally: feed events in sequence order, then the checkpoints.
#[derive(Debug)]
pub struct ChainVerifier {
    next_seq: u64,
    head: ChainHash,
    /// The hash at every seq, so that checkpoints (which come after) can be matched. 32 bytes per event: a
    /// million events is 32 MB, more than a city's log holds in years.
    hashes: Vec<ChainHash>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { next_seq: 1, head: ChainHash::GENESIS, hashes: Vec::new() }
    }
}

impl ChainVerifier {
    pub fn push(&mut self, chained: &ChainedEvent) -> Result<(), ChainBreak> {
        let expected = self.next_seq;
        let fail = |reason: String| Err(ChainBreak { seq: expected, reason });
        if chained.seq != expected {
            return fail(format!("event {expected} is missing (the next event found is {})", chained.seq));
        }
        if chained.prev_hash != self.head {
            return fail("its previous hash is not the hash of the event before it".to_owned());
        }
        if event_hash(self.head, chained.seq, &chained.event) != chained.hash {
            return fail("its content does not match its hash (the event was changed)".to_owned());
        }
        self.head = chained.hash;
        self.hashes.push(chained.hash);
        self.next_seq += 1;
        Ok(())
    }

    /// Checks `checkpoints` (from the database and from the file) against the events pushed so far.
    pub fn finish(self, checkpoints: &[Checkpoint], trusted: &[VerifyingKey]) -> Result<Verified, ChainBreak> {
        let events = self.next_seq - 1;
        let mut covered_to = 0;
        for checkpoint in checkpoints {
            let fail = |reason: String| Err(ChainBreak { seq: checkpoint.seq, reason });
            let Some(key) = trusted.iter().find(|key| key_id(key) == checkpoint.key_id) else {
                return fail(format!("the checkpoint is signed by key {}, which is not trusted", checkpoint.key_id));
            };
            let message = checkpoint_message(checkpoint.seq, checkpoint.hash, checkpoint.signed_at, &checkpoint.key_id);
            if key.verify(&message, &Signature::from_bytes(&checkpoint.signature)).is_err() {
                return fail("the checkpoint's signature is not valid".to_owned());
            }
            if checkpoint.seq > events {
                return Err(ChainBreak {
                    seq: events + 1,
                    reason: format!(
                        "the log ends at seq {events} but a signed checkpoint vouches for seq {} (events were cut)",
                        checkpoint.seq
                    ),
                });
            }
            let index = usize::try_from(checkpoint.seq).unwrap_or(usize::MAX).saturating_sub(1);
            if checkpoint.seq == 0 || self.hashes.get(index) != Some(&checkpoint.hash) {
                return fail("the log's hash here differs from the signed checkpoint's".to_owned());
            }
            covered_to = covered_to.max(checkpoint.seq);
        }
        Ok(Verified { events, head: self.head, checkpoints: checkpoints.len(), covered_to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            id: 0,
            actor: "editor".to_owned(),
            at: 1_700_000_000_000,
            action: action.to_owned(),
            resource: "cities/4301/counties/430181/townships/430181110".to_owned(),
            before: None,
            after: Some("{}".to_owned()),
        }
    }

    fn chain(actions: &[&str]) -> Vec<ChainedEvent> {
        let mut prev = ChainHash::GENESIS;
        let mut chained = Vec::new();
        for (index, action) in actions.iter().enumerate() {
            let seq = index as u64 + 1;
            let hash = event_hash(prev, seq, &event(action));
            chained.push(ChainedEvent { seq, event: event(action), prev_hash: prev, hash });
            prev = hash;
        }
        chained
    }

    fn verify(events: &[ChainedEvent], checkpoints: &[Checkpoint], key: &SigningKey) -> Result<Verified, ChainBreak> {
        let mut verifier = ChainVerifier::default();
        for event in events {
            verifier.push(event)?;
        }
        verifier.finish(checkpoints, &[key.verifying_key()])
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn an_untouched_chain_with_its_checkpoint_verifies() {
        let events = chain(&["A", "B", "C"]);
        let checkpoint = sign_checkpoint(&key(), 3, events[2].hash, 1);
        let verified = verify(&events, &[checkpoint], &key()).unwrap();
        assert_eq!((verified.events, verified.covered_to, verified.head), (3, 3, events[2].hash));
    }

    #[test]
    fn a_changed_field_is_named_by_its_seq() {
        let mut events = chain(&["A", "B", "C"]);
        events[1].event.actor = "someone else".to_owned();
        assert_eq!(verify(&events, &[], &key()).unwrap_err().seq, 2);
    }

    #[test]
    fn a_deleted_middle_event_is_named_by_its_seq() {
        let mut events = chain(&["A", "B", "C"]);
        events.remove(1);
        let broken = verify(&events, &[], &key()).unwrap_err();
        assert_eq!(broken.seq, 2);
        assert!(broken.reason.contains("missing"), "{broken}");
    }

    #[test]
    fn a_rehashed_forgery_breaks_at_the_changed_event_or_its_checkpoint() {
        // Whoever rewrites an event and recomputes every hash after it still cannot re-sign the checkpoint.
        let events = chain(&["A", "B", "C"]);
        let checkpoint = sign_checkpoint(&key(), 3, events[2].hash, 1);
        let forged = chain(&["A", "forged", "C"]);
        assert_eq!(verify(&forged, &[checkpoint], &key()).unwrap_err().seq, 3);
    }

    #[test]
    fn a_cut_tail_is_caught_by_the_checkpoint_that_covered_it() {
        let events = chain(&["A", "B", "C", "D"]);
        let checkpoint = sign_checkpoint(&key(), 4, events[3].hash, 1);
        let broken = verify(&events[..2], &[checkpoint], &key()).unwrap_err();
        assert_eq!(broken.seq, 3);
        assert!(broken.reason.contains("cut"), "{broken}");
    }

    #[test]
    fn a_checkpoint_signed_by_an_untrusted_key_or_altered_is_refused() {
        let events = chain(&["A"]);
        let stranger = SigningKey::from_bytes(&[9; 32]);
        let foreign = sign_checkpoint(&stranger, 1, events[0].hash, 1);
        assert!(verify(&events, &[foreign], &key()).unwrap_err().reason.contains("not trusted"));
        let mut altered = sign_checkpoint(&key(), 1, events[0].hash, 1);
        altered.signed_at += 1;
        assert!(verify(&events, &[altered], &key()).unwrap_err().reason.contains("signature"));
    }

    #[test]
    fn events_and_checkpoints_are_domain_separated() {
        assert_ne!(EVENT_DOMAIN, CHECKPOINT_DOMAIN);
        let a = event_hash(ChainHash::GENESIS, 1, &AuditEvent { before: Some(String::new()), ..event("A") });
        let b = event_hash(ChainHash::GENESIS, 1, &AuditEvent { before: None, ..event("A") });
        assert_ne!(a, b, "an empty before and no before hash differently");
    }
}
