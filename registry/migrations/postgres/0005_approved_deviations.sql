-- Approved deviations (issue 11 §2, 各县市区可以结合实际调整优化机构设置). Keep in step with
-- ../sqlite/0005_approved_deviations.sql.

-- A county's decision (文号, date of approval, reason) that a rule applies differently to its townships (township
-- NULL) or to one township: a figure for a count rule (allowed), else a waiver (allowed NULL, what is done
-- instead in allowed_description). Never deleted: a revocation fills the revoked_* columns.
CREATE TABLE approved_deviations (
    id                         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    county                     TEXT    NOT NULL REFERENCES counties (code),
    township                   TEXT    REFERENCES townships (code),
    rule                       TEXT    NOT NULL,
    allowed                    BIGINT,
    allowed_description        TEXT    NOT NULL,
    document_number            TEXT    NOT NULL,
    approved_on                TEXT    NOT NULL,
    reason                     TEXT    NOT NULL,
    valid_to                   TEXT,
    created_by                 TEXT    NOT NULL,
    created_at                 BIGINT  NOT NULL,
    revoked_at                 BIGINT,
    revoked_by                 TEXT,
    revocation_document_number TEXT,
    revocation_reason          TEXT
);
-- One unrevoked deviation per parent and rule: a new figure replaces the old only after its revocation.
CREATE UNIQUE INDEX approved_deviations_one_per_rule ON approved_deviations (county, COALESCE(township, ''), rule)
    WHERE revoked_at IS NULL;
CREATE INDEX approved_deviations_by_township ON approved_deviations (township, id);
