-- The read index: everything the API serves, rebuilt from git by `reindex`.

-- One row per ontology version, in the order of the commits on main.
CREATE TABLE releases (
    seq         BIGINT PRIMARY KEY,
    version     TEXT NOT NULL UNIQUE,
    commit_id   TEXT NOT NULL UNIQUE,
    released_at TEXT NOT NULL,
    bump        TEXT,
    title       TEXT NOT NULL
);

-- One row per KPI version, with its rendered JSON body.
CREATE TABLE kpi_versions (
    kpi_id      TEXT NOT NULL,
    version     TEXT NOT NULL,
    release_seq BIGINT NOT NULL REFERENCES releases (seq),
    bump        TEXT,
    tier        TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    title       TEXT NOT NULL,
    proposal    TEXT,
    body        TEXT NOT NULL,
    PRIMARY KEY (kpi_id, version)
);
CREATE INDEX kpi_versions_release ON kpi_versions (release_seq);

-- One row per domain and release that created or changed the domain.
CREATE TABLE domain_versions (
    domain_id   TEXT NOT NULL,
    release_seq BIGINT NOT NULL REFERENCES releases (seq),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (domain_id, release_seq)
);

-- The last commit of main that the index holds.
CREATE TABLE index_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    commit_id TEXT NOT NULL
);

-- Full-text search over the latest version of each KPI, weighted name > summary >
-- definition.
CREATE TABLE kpi_search (
    kpi_id     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    summary    TEXT NOT NULL,
    definition TEXT NOT NULL,
    document   TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A')
        || setweight(to_tsvector('english', summary), 'B')
        || setweight(to_tsvector('english', definition), 'C')
    ) STORED
);
CREATE INDEX kpi_search_document ON kpi_search USING GIN (document);
