-- strata configuration: a Lua chunk returning a table.  Every key can be
-- overridden by the environment variable STRATA_<KEY> (for example
-- STRATA_LISTEN, STRATA_WORKERS); database_url also by DATABASE_URL.
-- An unknown key or a value out of range stops the server at start.
return {
  listen = "127.0.0.1:8080",      -- host:port to serve HTTP on
  workers = 0,                    -- worker threads; 0 = one per core
  database_url = nil,             -- nil: DATABASE_URL (`make run` sets it to the embedded cluster)
  sql_dir = "sql",                -- migrations /ready waits for
  lua_dir = "lua",                -- routes/, policies/, validators/, strata/
  ready_interval_ms = 1000,       -- database readiness probe period

  -- Limits: each answered with its status code and a JSON error.
  max_body_bytes = 1048576,       -- 413
  max_header_bytes = 16384,       -- 431 (request line + headers)
  max_headers = 100,              -- 431
  max_uri_bytes = 8192,           -- 414
  read_timeout_ms = 10000,        -- 408: a started request must arrive whole within this
  idle_timeout_ms = 60000,        -- an idle keep-alive connection is closed after this
  lingering_timeout_ms = 5000,    -- after a 4xx sent before the request was read whole, input is dropped this long
  lingering_max_bytes = 67108864, -- or up to this many bytes, so the client reads the answer instead of a reset
  max_connections = 10000,        -- past it new connections get 503 and are closed
  shutdown_timeout_ms = 10000,    -- SIGTERM: how long in-flight requests may take to finish

  -- PostgreSQL pool, per worker (strata.db).
  db_pool_min = 1,                -- connections kept open
  db_pool_max = 4,                -- connections at most
  db_queue_max = 1024,            -- requests that may wait for a connection
  db_wait_timeout_ms = 5000,      -- then 503 with Retry-After
  db_statement_timeout_ms = 30000, -- PostgreSQL statement_timeout of pool connections

  -- REST API and auth.
  schemas = "public,orchestrator,agentflow", -- exposed schemas; the first is the default profile
  max_rows = 1000,                -- most rows one REST read returns
  rest_rls = false,               -- true: REST and strata.data statements also pass row level security
                                  -- (they carry the Lua policy already: ~10% on a list, see README)
  jwt_secret = nil,               -- HS256 secret: set STRATA_JWT_SECRET rather than writing it here
  jwt_aud = "authenticated",      -- a token whose "aud" claim does not name this is refused (401); "" : not checked
  jwt_leeway_s = 30,              -- tolerance on exp and nbf
  jwt_signing_alg = "HS256",      -- /auth/v1 signs with: HS256 (the secret), ES256 or RS256 (jwt_signing_key)
  jwt_signing_key = nil,          -- PEM private key for ES256 (P-256) / RS256
  jwt_accepted_keys = nil,        -- comma-separated PEM keys still accepted (rotation)

  -- /auth/v1 (Supabase Auth's API; lua/auth/).
  auth_bcrypt_cost = 10,          -- bcrypt's log2 rounds for new password hashes
  auth_bcrypt_threads = 2,        -- threads computing bcrypt, off the workers' loops
  auth_jwt_exp = 3600,            -- access token lifetime, seconds
  auth_autoconfirm = true,        -- a sign-up is confirmed at once (else a link goes to the send_email hook)
  auth_disable_signup = false,    -- true: /auth/v1/signup refuses (admins still create users)
  auth_site_url = "http://localhost:3000", -- where email links send the user by default
  auth_rate_limit_address = 30,   -- sign-in/up, recover, verify requests per client address per 5 min
  auth_rate_limit_email = 10,     -- the same per email address, counted across instances

  -- Rate limits (lua/ratelimits.lua reads these; 0 turns a budget off).
  rate_limit_user_per_minute = 1200, -- per authenticated user, whole API
  rate_limit_anon_per_minute = 600,  -- per client address without a token
  rate_limit_max_keys = 100000,   -- counters kept (~85 bytes each); past it the idlest are evicted
  rate_limit_flush_ms = 1000,     -- agent usage counts go to rate_limit_tracking this often
  rate_limit_sweep_ms = 60000,    -- idle cluster cells are deleted this often
  log_queue_max = 100000,         -- log rows kept while the database is away; past it dropped (counted)
  log_purge_interval_ms = 3600000, -- the log retention purge runs this often
  log_purge_batch = 5000,         -- rows per table per purge statement
  jobs_tick_ms = 1000,            -- lua/jobs.lua's jobs are looked at this often (0: no jobs run)

  lua_memory_limit_mb = 256,      -- a handler that grows its Lua state past this is stopped (500); 0: none
  lua_time_limit_ms = 1000,       -- a handler running this long without waiting is stopped (500)
  http_ca_file = nil,             -- CA bundle for strata.http.request's TLS checks; nil: the system's
  stream_buffer_max = 262144,     -- streamed answers: unsent bytes past which res.write waits for the client
  stream_timeout_ms = 30000,      -- and how long it waits before cutting the stream ("slow client")
  access_log = "stderr",          -- "stderr", "off", or a file path
  reload_watch = true,            -- reload when a file under lua_dir changes
  reload_debounce_ms = 200,       -- quiet time after the last change before reloading

  -- CORS, so browser clients (supabase-js) can call the API.
  cors_origins = { "*" },
  cors_methods = "GET, POST, PUT, PATCH, DELETE, OPTIONS",
  cors_headers = "authorization, apikey, content-type, prefer, range, range-unit, accept-profile, "
    .. "content-profile, x-client-info, x-request-id",
  cors_expose = "content-range, content-location, preference-applied, x-request-id",
  cors_max_age = 86400,

  -- AI providers (lua/providers/): base URLs, and API keys from the
  -- environment (STRATA_GOOGLE_API_KEY, STRATA_OPENAI_API_KEY,
  -- STRATA_ANTHROPIC_API_KEY) rather than this file.
  google_base_url = "https://generativelanguage.googleapis.com",
  openai_base_url = "https://api.openai.com",
  anthropic_base_url = "https://api.anthropic.com",
}
