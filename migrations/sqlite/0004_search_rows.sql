-- A stable integer per KPI for its row in kpi_search, so replacing a KPI's search row is
-- a lookup by rowid. FTS5 cannot index the kpi_id column it stores, and deleting by it
-- scans the whole table.
CREATE TABLE kpi_search_rows (
    row_id INTEGER PRIMARY KEY,
    kpi_id TEXT NOT NULL UNIQUE
);
