-- Updates with etags, and retry-safe creates (AIP-155). Keep in step with ../sqlite/0003_updates_and_request_ids.sql.

-- Institutions, plaques and catalogue items become updatable: a revision for the etag (existing rows start at 1)
-- and the time of the last change (existing rows: their creation).
ALTER TABLE institutions ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE institutions ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE institutions SET updated_at = created_at;
ALTER TABLE plaques ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE plaques ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE plaques SET updated_at = created_at;
ALTER TABLE catalogue_items ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE catalogue_items ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE catalogue_items SET updated_at = created_at;

-- One row per request_id a create was given, written in the create's own transaction: a retry finds it and gets
-- the first answer back (result, the stored records as JSON); the same id with another request (a different
-- method or fingerprint, the SHA-256 of the request without its id) is refused.
CREATE TABLE request_ids (
    request_id  TEXT    NOT NULL PRIMARY KEY,
    method      TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    result      TEXT    NOT NULL,
    created_at  BIGINT NOT NULL
);
