-- Adopted data years (issue 11 §1). Keep in step with ../sqlite/0004_year_adoptions.sql.

-- A city's current year is the latest data year whose cohort covers every township in force, or a year a city
-- administrator adopted explicitly: one row per adoption, with the approving document (文号), the date it took
-- effect (ISO date), the reason, and the townships without data for the year when it was adopted (JSON array of
-- codes).
CREATE TABLE year_adoptions (
    city                   TEXT    NOT NULL REFERENCES cities (code),
    data_year              BIGINT  NOT NULL,
    document_number        TEXT    NOT NULL,
    adopted_on             TEXT    NOT NULL,
    reason                 TEXT    NOT NULL,
    townships_without_data TEXT    NOT NULL,
    townships_in_force     BIGINT  NOT NULL,
    adopted_by             TEXT    NOT NULL,
    adopted_at             BIGINT  NOT NULL,
    PRIMARY KEY (city, data_year)
);
