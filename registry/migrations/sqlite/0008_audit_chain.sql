-- Tamper evidence for the audit log: a gap-free sequence number and a SHA-256 hash chained to the previous
-- event's (domain/audit_chain.rs), the chain's head in one row, and signed checkpoints. Both tables are
-- append-only: the triggers abort any UPDATE or DELETE. The only update allowed is the one-time chaining of
-- events recorded before this migration (hash still NULL), done by the store when it opens.
ALTER TABLE audit_events ADD COLUMN seq INTEGER;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_events_by_seq ON audit_events (seq);

CREATE TABLE audit_head (
    only_row INTEGER NOT NULL PRIMARY KEY CHECK (only_row = 1),
    seq      INTEGER NOT NULL,
    hash     TEXT    NOT NULL
);
INSERT INTO audit_head (only_row, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
    seq       INTEGER NOT NULL PRIMARY KEY,
    hash      TEXT    NOT NULL,
    signed_at INTEGER NOT NULL,
    key_id    TEXT    NOT NULL,
    signature TEXT    NOT NULL
);

CREATE TRIGGER audit_events_chained_on_insert BEFORE INSERT ON audit_events
WHEN NEW.seq IS NULL OR NEW.hash IS NULL OR NEW.prev_hash IS NULL
BEGIN SELECT RAISE(ABORT, 'audit_events: an event must carry its seq and hashes'); END;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events WHEN OLD.hash IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
