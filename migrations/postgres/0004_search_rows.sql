-- PostgreSQL keys kpi_search by kpi_id already; this migration keeps the two migration
-- histories numbered alike.
SELECT 1;
