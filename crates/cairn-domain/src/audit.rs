//! The tamper-evident audit log's record and hash chain. Each record's hash covers its own
//! fields and the previous record's hash, so editing, deleting or reordering any record breaks
//! every hash after it, and `verify_chain` names the first record that no longer fits.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something and under which request: passed down from every surface into every
/// mutation so the audit record is written in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The acting principal (a user name, `anonymous` while auth is off, or `system`).
    pub actor: String,
    /// The request id of the HTTP request, when there is one.
    pub request_id: Option<String>,
    /// The authenticated user, when there is one.
    pub principal: Option<crate::identity::Principal>,
    /// The project the request is scoped to (`/p/<project>/…`); the default project otherwise.
    pub project: Option<String>,
}

impl RequestContext {
    /// Cairn itself acting (migrations, background work, command-line administration).
    pub fn system() -> Self {
        Self { actor: "system".to_string(), request_id: None, principal: None, project: None }
    }

    /// An unauthenticated caller (only while authentication is disabled).
    pub fn anonymous(request_id: Option<String>) -> Self {
        Self { actor: "anonymous".to_string(), request_id, principal: None, project: None }
    }

    /// An authenticated user.
    pub fn user(principal: crate::identity::Principal, request_id: Option<String>) -> Self {
        Self {
            actor: principal.username.clone(),
            request_id,
            principal: Some(principal),
            project: None,
        }
    }
}

/// What happened, before it gets its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// The action, dotted: `run.create`, `experiment.tag.set`, `artifact.put`…
    pub action: String,
    /// The target, `kind:id`: `run:0a1b…`, `experiment:3`, `artifact:1/abc/artifacts/x`.
    pub target: String,
    /// Action-specific details (keys are sorted when serialised).
    pub details: serde_json::Value,
}

/// One stored audit record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Milliseconds since the epoch.
    pub time: i64,
    /// Who acted.
    pub actor: String,
    /// What they did.
    pub action: String,
    /// To what.
    pub target: String,
    /// Under which request.
    pub request_id: Option<String>,
    /// Canonical JSON of the details.
    pub details: String,
    /// The previous record's hash (or [`GENESIS_HASH`]).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// Computes a record's hash from its fields and the previous hash (hex SHA-256).
pub fn record_hash(record: &AuditRecord) -> String {
    let mut hasher = Sha256::new();
    for field in [
        record.seq.to_string().as_str(),
        record.time.to_string().as_str(),
        record.actor.as_str(),
        record.action.as_str(),
        record.target.as_str(),
        record.request_id.as_deref().unwrap_or(""),
        record.details.as_str(),
        record.prev_hash.as_str(),
    ] {
        // Length-prefixing keeps field boundaries unambiguous.
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Why a chain failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first record that does not fit.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Incremental verification over records read in `seq` order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    previous_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { expected_seq: 1, previous_hash: GENESIS_HASH.to_string() }
    }
}

impl ChainVerifier {
    /// Checks the next record; returns the break if it does not continue the chain.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let fail = |reason: String| Err(ChainBreak { seq: record.seq, reason });
        if record.seq != self.expected_seq {
            return Err(ChainBreak {
                seq: self.expected_seq,
                reason: format!(
                    "record {} is missing (found {} next)",
                    self.expected_seq, record.seq
                ),
            });
        }
        if record.prev_hash != self.previous_hash {
            return fail("its prev_hash does not match the previous record's hash".to_string());
        }
        if record_hash(record) != record.hash {
            return fail("its contents do not match its hash (the record was altered)".to_string());
        }
        self.expected_seq += 1;
        self.previous_hash = record.hash.clone();
        Ok(())
    }

    /// How many records were verified.
    pub fn verified(&self) -> i64 {
        self.expected_seq - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(length: i64) -> Vec<AuditRecord> {
        let mut previous = GENESIS_HASH.to_string();
        (1..=length)
            .map(|seq| {
                let mut record = AuditRecord {
                    seq,
                    time: 1000 + seq,
                    actor: "ada".into(),
                    action: "run.create".into(),
                    target: format!("run:{seq}"),
                    request_id: Some("req".into()),
                    details: "{}".into(),
                    prev_hash: previous.clone(),
                    hash: String::new(),
                };
                record.hash = record_hash(&record);
                previous = record.hash.clone();
                record
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let mut verifier = ChainVerifier::default();
        for record in chain(5) {
            verifier.push(&record).unwrap();
        }
        assert_eq!(verifier.verified(), 5);
    }

    #[test]
    fn an_edit_is_found_at_its_record() {
        let mut records = chain(5);
        records[2].actor = "mallory".into();
        let mut verifier = ChainVerifier::default();
        let failure = records.iter().try_for_each(|record| verifier.push(record)).unwrap_err();
        assert_eq!(failure.seq, 3);
    }

    #[test]
    fn a_deletion_is_found() {
        let mut records = chain(5);
        records.remove(1);
        let mut verifier = ChainVerifier::default();
        let failure = records.iter().try_for_each(|record| verifier.push(record)).unwrap_err();
        assert_eq!(failure.seq, 2);
    }

    #[test]
    fn a_rehashed_edit_still_breaks_the_link() {
        let mut records = chain(5);
        records[1].target = "run:forged".into();
        records[1].hash = record_hash(&records[1]);
        let mut verifier = ChainVerifier::default();
        let failure = records.iter().try_for_each(|record| verifier.push(record)).unwrap_err();
        assert_eq!(failure.seq, 3, "the next record's prev_hash no longer matches");
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut first = chain(1).remove(0);
        let mut second = first.clone();
        first.actor = "ab".into();
        first.action = "c".into();
        second.actor = "a".into();
        second.action = "bc".into();
        assert_ne!(record_hash(&first), record_hash(&second));
    }
}
