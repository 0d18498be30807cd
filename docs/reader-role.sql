-- An analysts' read-only role on a PostgreSQL catalog (warehouse/readers.py runs the same grants;
-- tests/warehouse/test_reader_role.py proves them). Run it with psql as the role that writes the
-- catalog (the one in the nights' WIREHOUSE_CATALOG), in the catalog's database:
--
--   psql "$CATALOG_DSN" -v reader=analysts -f docs/reader-role.sql
--
-- The role then attaches the lake READ_ONLY (`wirehouse sql`, `shell`, `warehouse.connect()`
-- with WIREHOUSE_CATALOG=postgres:...user=analysts...) and queries every table, time travel
-- included; an INSERT, DELETE, UPDATE, DROP or CREATE, in psql or through a read-write ATTACH,
-- fails with "permission denied" and changes nothing. The data files need reading too: give the
-- analysts read-only object-store keys (or read-only access to the data path's folder).

CREATE ROLE :"reader" LOGIN;  -- then: \password analysts (or skip this line for an existing role)
SELECT current_database() AS db \gset
GRANT CONNECT ON DATABASE :"db" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
-- DuckLake adds tables as nights run (a night's small inserts go to new ducklake_inlined_data_*
-- tables): the writer's future tables are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
