-- strata configuration: a Lua chunk returning a table.
-- Environment variables override it: STRATA_LISTEN, DATABASE_URL,
-- STRATA_SQL_DIR, STRATA_READY_INTERVAL_MS.
return {
  -- host:port to serve HTTP on.
  listen = "127.0.0.1:8080",

  -- PostgreSQL connection URL. nil: taken from DATABASE_URL, which
  -- `make run` sets to the embedded cluster (scripts/db url) when unset.
  database_url = nil,

  -- Where the migrations live: /ready answers 503 while any is unapplied.
  sql_dir = "sql",

  -- How often the readiness probe checks the database, in milliseconds.
  ready_interval_ms = 1000,
}
