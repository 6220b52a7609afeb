-- The registry's schema on SQLite. Timestamps are milliseconds since the Unix epoch (UTC); dates are ISO
-- text (YYYY-MM-DD); JSON is text. Keep in step with ../postgres/0001_init.sql: the store's SQL is shared.

CREATE TABLE cities (
    code          TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    province_code TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE counties (
    code       TEXT    NOT NULL PRIMARY KEY,
    city       TEXT    NOT NULL REFERENCES cities (code),
    name       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
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
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX townships_by_county ON townships (county, code);
CREATE INDEX townships_by_city ON townships (city, code);

CREATE TABLE indicator_observations (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    township       TEXT    NOT NULL REFERENCES townships (code),
    data_year      INTEGER NOT NULL,
    population     REAL    NOT NULL,
    fiscal_revenue REAL    NOT NULL,
    land_area      REAL    NOT NULL,
    source         TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    recorded_by    TEXT    NOT NULL
);
CREATE INDEX indicator_observations_by_township ON indicator_observations (township, data_year, id);

CREATE TABLE city_policies (
    city        TEXT    NOT NULL REFERENCES cities (code),
    version     INTEGER NOT NULL,
    policy_toml TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    PRIMARY KEY (city, version)
);

-- The transactional outbox: one row per cohort (city, data year) that ever needed classifying.
CREATE TABLE cohort_jobs (
    city            TEXT    NOT NULL REFERENCES cities (code),
    data_year       INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'current', 'dead_letter')),
    generation      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_run        INTEGER,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (city, data_year)
);
CREATE INDEX cohort_jobs_due ON cohort_jobs (state, next_attempt_at);

CREATE TABLE classification_runs (
    id                 INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    city               TEXT    NOT NULL REFERENCES cities (code),
    data_year          INTEGER NOT NULL,
    generation         INTEGER NOT NULL,
    policy_version     INTEGER NOT NULL,
    policy_fingerprint TEXT    NOT NULL,
    run_at             INTEGER NOT NULL,
    run_by             TEXT    NOT NULL,
    classes_changed    INTEGER NOT NULL,
    lines              TEXT    NOT NULL,
    response           BLOB    NOT NULL
);
CREATE INDEX classification_runs_by_city ON classification_runs (city, id);

CREATE TABLE township_classes (
    township                 TEXT    NOT NULL REFERENCES townships (code),
    data_year                INTEGER NOT NULL,
    computed_class           INTEGER,
    previous_class           INTEGER,
    override_class           INTEGER,
    override_reason          TEXT,
    override_document_number TEXT,
    override_set_by          TEXT,
    override_set_at          INTEGER,
    score                    REAL    NOT NULL,
    class_rank               INTEGER NOT NULL,
    index_population         REAL    NOT NULL,
    index_fiscal_revenue     REAL    NOT NULL,
    index_land_area          REAL    NOT NULL,
    run_id                   INTEGER REFERENCES classification_runs (id),
    explanation              TEXT    NOT NULL,
    updated_at               INTEGER NOT NULL,
    PRIMARY KEY (township, data_year)
);
CREATE INDEX township_classes_by_year ON township_classes (data_year, township);

CREATE TABLE class_history (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    township       TEXT    NOT NULL REFERENCES townships (code),
    data_year      INTEGER NOT NULL,
    previous_class INTEGER,
    new_class      INTEGER NOT NULL,
    score          REAL    NOT NULL,
    cause          TEXT    NOT NULL CHECK (cause IN ('classification', 'override')),
    run_id         INTEGER REFERENCES classification_runs (id),
    changed_at     INTEGER NOT NULL
);
CREATE INDEX class_history_by_township ON class_history (township, id);

CREATE TABLE institutions (
    id                 INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    township           TEXT    NOT NULL REFERENCES townships (code),
    kind               TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    staffing_quota     INTEGER NOT NULL,
    approving_document TEXT    NOT NULL,
    valid_from         TEXT,
    valid_to           TEXT,
    created_at         INTEGER NOT NULL
);
CREATE INDEX institutions_by_township ON institutions (township, id);

CREATE TABLE plaques (
    id                 INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    institution_id     INTEGER NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    township           TEXT    NOT NULL REFERENCES townships (code),
    name               TEXT    NOT NULL,
    approving_document TEXT    NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX plaques_by_township ON plaques (township, id);
CREATE INDEX plaques_by_institution ON plaques (institution_id, id);

CREATE TABLE leadership_posts (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    township      TEXT    NOT NULL REFERENCES townships (code),
    role          TEXT    NOT NULL,
    holder        TEXT,
    mandated_role TEXT,
    revision      INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX leadership_posts_by_township ON leadership_posts (township, id);

CREATE TABLE audit_events (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    actor       TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX audit_events_by_resource ON audit_events (resource, id);
