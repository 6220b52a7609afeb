-- Staffing by class (issue 11 §2). Keep in step with ../sqlite/0006_staffing.sql.

-- An institution's approved staffing (编制) is a ledger of approvals, never updated or deleted: 批准文号, 批准时间
-- (ISO date), 编制类型, 经费类型, the signed change (a reduction is negative) and 变动摘要. The approved figure of
-- a type is the sum of its changes; institutions.staffing_quota is kept equal to the sum over both types. No
-- foreign key to institutions: the approvals of a deleted institution stay as history.
CREATE TABLE staffing_approvals (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id  BIGINT  NOT NULL,
    township        TEXT    NOT NULL REFERENCES townships (code),
    document_number TEXT    NOT NULL,
    approved_on     TEXT    NOT NULL,
    staffing_type   TEXT    NOT NULL,
    funding_type    TEXT    NOT NULL,
    change          BIGINT  NOT NULL,
    summary         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    created_by      TEXT    NOT NULL
);
CREATE INDEX staffing_approvals_by_township ON staffing_approvals (township, institution_id, id);

-- The actual headcount (实有人数) of an institution per staffing type, as last set (each set is audited).
CREATE TABLE staffing_headcounts (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id BIGINT  NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    township       TEXT    NOT NULL REFERENCES townships (code),
    staffing_type  TEXT    NOT NULL,
    actual         BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    updated_by     TEXT    NOT NULL,
    UNIQUE (institution_id, staffing_type)
);
CREATE INDEX staffing_headcounts_by_township ON staffing_headcounts (township, id);

-- The quotas recorded before the ledger become its first approvals, from the institution's approving document.
INSERT INTO staffing_approvals (institution_id, township, document_number, approved_on, staffing_type, funding_type,
                                change, summary, created_at, created_by)
SELECT id, township, approving_document, COALESCE(valid_from, '1970-01-01'),
       CASE kind WHEN 'party_government_office' THEN 'administrative' ELSE 'public_institution' END, 'full',
       staffing_quota, '核定编制 (recorded before the staffing ledger)', created_at, 'migration 0006'
FROM institutions WHERE staffing_quota > 0 ORDER BY id;
