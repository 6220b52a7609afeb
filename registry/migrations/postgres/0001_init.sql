-- The registry's schema on PostgreSQL. Timestamps are milliseconds since the Unix epoch (UTC); dates are ISO
-- text (YYYY-MM-DD); JSON is text. Keep in step with ../sqlite/0001_init.sql: the store's SQL is shared.

CREATE TABLE cities (
    code          TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    province_code TEXT    NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE counties (
    code       TEXT    NOT NULL PRIMARY KEY,
    city       TEXT    NOT NULL REFERENCES cities (code),
    name       TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX counties_by_city ON counties (city, code);

CREATE TABLE townships (
    code       TEXT    NOT NULL PRIMARY KEY,
    county     TEXT    NOT NULL REFERENCES counties (code),
    city       TEXT    NOT NULL REFERENCES cities (code),
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    flags      TEXT    NOT NULL DEFAULT '[]',
    valid_from TEXT,
    valid_to   TEXT,
    revision   BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX townships_by_county ON townships (county, code);
CREATE INDEX townships_by_city ON townships (city, code);

CREATE TABLE indicator_observations (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    township       TEXT    NOT NULL REFERENCES townships (code),
    data_year      BIGINT  NOT NULL,
    population     DOUBLE PRECISION NOT NULL,
    fiscal_revenue DOUBLE PRECISION NOT NULL,
    land_area      DOUBLE PRECISION NOT NULL,
    source         TEXT    NOT NULL,
    recorded_at    BIGINT  NOT NULL,
    recorded_by    TEXT    NOT NULL
);
CREATE INDEX indicator_observations_by_township ON indicator_observations (township, data_year, id);

CREATE TABLE city_policies (
    city        TEXT    NOT NULL REFERENCES cities (code),
    version     BIGINT  NOT NULL,
    policy_toml TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    PRIMARY KEY (city, version)
);

-- The transactional outbox: one row per cohort (city, data year) that ever needed classifying.
CREATE TABLE cohort_jobs (
    city            TEXT    NOT NULL REFERENCES cities (code),
    data_year       BIGINT  NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'current', 'dead_letter')),
    generation      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL,
    last_error      TEXT    NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_run        BIGINT,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (city, data_year)
);
CREATE INDEX cohort_jobs_due ON cohort_jobs (state, next_attempt_at);

CREATE TABLE classification_runs (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    city               TEXT    NOT NULL REFERENCES cities (code),
    data_year          BIGINT  NOT NULL,
    generation         BIGINT  NOT NULL,
    policy_version     BIGINT  NOT NULL,
    policy_fingerprint TEXT    NOT NULL,
    run_at             BIGINT  NOT NULL,
    run_by             TEXT    NOT NULL,
    classes_changed    BIGINT  NOT NULL,
    lines              TEXT    NOT NULL,
    response           BYTEA   NOT NULL
);
CREATE INDEX classification_runs_by_city ON classification_runs (city, id);

CREATE TABLE township_classes (
    township                 TEXT    NOT NULL REFERENCES townships (code),
    data_year                BIGINT  NOT NULL,
    computed_class           BIGINT,
    previous_class           BIGINT,
    override_class           BIGINT,
    override_reason          TEXT,
    override_document_number TEXT,
    override_set_by          TEXT,
    override_set_at          BIGINT,
    score                    DOUBLE PRECISION NOT NULL,
    class_rank               BIGINT  NOT NULL,
    index_population         DOUBLE PRECISION NOT NULL,
    index_fiscal_revenue     DOUBLE PRECISION NOT NULL,
    index_land_area          DOUBLE PRECISION NOT NULL,
    run_id                   BIGINT  REFERENCES classification_runs (id),
    explanation              TEXT    NOT NULL,
    updated_at               BIGINT  NOT NULL,
    PRIMARY KEY (township, data_year)
);
CREATE INDEX township_classes_by_year ON township_classes (data_year, township);

CREATE TABLE class_history (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    township       TEXT    NOT NULL REFERENCES townships (code),
    data_year      BIGINT  NOT NULL,
    previous_class BIGINT,
    new_class      BIGINT  NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    cause          TEXT    NOT NULL CHECK (cause IN ('classification', 'override')),
    run_id         BIGINT  REFERENCES classification_runs (id),
    changed_at     BIGINT  NOT NULL
);
CREATE INDEX class_history_by_township ON class_history (township, id);

CREATE TABLE institutions (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    township           TEXT    NOT NULL REFERENCES townships (code),
    kind               TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    staffing_quota     BIGINT  NOT NULL,
    approving_document TEXT    NOT NULL,
    valid_from         TEXT,
    valid_to           TEXT,
    created_at         BIGINT  NOT NULL
);
CREATE INDEX institutions_by_township ON institutions (township, id);

CREATE TABLE plaques (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id     BIGINT  NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    township           TEXT    NOT NULL REFERENCES townships (code),
    name               TEXT    NOT NULL,
    approving_document TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL
);
CREATE INDEX plaques_by_township ON plaques (township, id);
CREATE INDEX plaques_by_institution ON plaques (institution_id, id);

CREATE TABLE leadership_posts (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    township      TEXT    NOT NULL REFERENCES townships (code),
    role          TEXT    NOT NULL,
    holder        TEXT,
    mandated_role TEXT,
    revision      BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX leadership_posts_by_township ON leadership_posts (township, id);

CREATE TABLE audit_events (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor       TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    action      TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX audit_events_by_resource ON audit_events (resource text_pattern_ops, id);
