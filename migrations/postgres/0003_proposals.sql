-- Change proposals and their reviews.

CREATE TABLE proposals (
    id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                    TEXT NOT NULL CHECK (kind IN ('change', 'creation', 'promotion')),
    kpi_id                  TEXT NOT NULL,
    base_version            TEXT,
    record                  TEXT NOT NULL,
    domain_name             TEXT,
    domain_description      TEXT,
    title                   TEXT NOT NULL,
    rationale               TEXT NOT NULL,
    bump                    TEXT CHECK (bump IN ('major', 'minor', 'patch')),
    dispute                 TEXT,
    back_attributed_to      TEXT,
    state                   TEXT NOT NULL CHECK (state IN ('open', 'approved', 'merged', 'rejected', 'withdrawn')),
    revision                BIGINT NOT NULL,
    author                  TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    merged_version          TEXT,
    merged_ontology_version TEXT,
    merged_commit           TEXT,
    merged_at               TEXT,
    merged_by               TEXT
);
CREATE INDEX proposals_state ON proposals (state, id);
CREATE INDEX proposals_kpi ON proposals (kpi_id, id);

-- One row per verdict; the policy counts the verdicts on the proposal's current revision.
CREATE TABLE reviews (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proposal_id BIGINT NOT NULL REFERENCES proposals (id),
    revision    BIGINT NOT NULL,
    reviewer    TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('approve', 'request_changes', 'reject')),
    comment     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX reviews_proposal ON reviews (proposal_id, id);
