-- Duty catalogues (DESIGN.md §1.3, §4) on SQLite. Keep in step with ../postgres/0002_catalogues.sql.
--
-- One table for the three catalogues (权力清单, 责任清单, 公共服务事项目录): the columns of the other types are
-- NULL. `owner` is the code of the county (a template item its townships inherit) or of the township (its own
-- item); codes are unique per owner, and a township item with a template item's code replaces it there.
CREATE TABLE catalogue_items (
    id                            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    owner                         TEXT    NOT NULL,
    county                        TEXT    NOT NULL REFERENCES counties (code),
    township                      TEXT    REFERENCES townships (code),
    code                          TEXT    NOT NULL,
    title                         TEXT    NOT NULL,
    item_type                     TEXT    NOT NULL CHECK (item_type IN ('power', 'responsibility', 'public_service')),
    duty_area                     TEXT    NOT NULL,
    -- Township items: the institution, by id and deliberately without a foreign key, so that deleting the
    -- institution leaves the item in place and the compliance report names it. NULL for template items.
    responsible_institution_id    INTEGER,
    -- Template items: the title resolved in each township; township items: the institution's name at create.
    responsible_institution_title TEXT    NOT NULL,
    power_category                TEXT,
    legal_basis                   TEXT,
    power_origin                  TEXT,
    power_item_code               TEXT,
    duties                        TEXT,
    accountability_cases          TEXT,
    service_domain                TEXT,
    handling_mode                 TEXT,
    created_at                    INTEGER NOT NULL,
    CHECK (owner = COALESCE(township, county)),
    CHECK ((township IS NULL) = (responsible_institution_id IS NULL))
);
CREATE UNIQUE INDEX catalogue_items_by_owner ON catalogue_items (owner, code);
CREATE INDEX catalogue_items_by_county ON catalogue_items (county, code);
