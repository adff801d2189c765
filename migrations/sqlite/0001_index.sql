-- The read index: everything the API serves, rebuilt from git by `reindex`.

-- One row per ontology version, in the order of the commits on main.
CREATE TABLE releases (
    seq         INTEGER PRIMARY KEY,
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
    release_seq INTEGER NOT NULL REFERENCES releases (seq),
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
    release_seq INTEGER NOT NULL REFERENCES releases (seq),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (domain_id, release_seq)
);

-- The last commit of main that the index holds.
CREATE TABLE index_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    commit_id TEXT NOT NULL
);

-- Full-text search over the latest version of each KPI.
CREATE VIRTUAL TABLE kpi_search USING fts5 (
    kpi_id UNINDEXED,
    name,
    summary,
    definition,
    tokenize = 'porter unicode61'
);
