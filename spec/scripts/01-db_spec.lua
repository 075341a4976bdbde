-- scripts/db migrate and verify on scratch databases of the test server.
local h = require("helpers")
local q = function(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its exit status and its output (both streams).
local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, status = p:close()
  return status, out
end

-- A URL for another database on the test server (same host, other path).
local function url_for(dbname)
  local base, query = h.url:match("^([^?]*)(.*)$")
  return base:gsub("/[^/]*$", "/" .. dbname) .. query
end

local function psql(url, sql)
  return sh(("psql -X -q -tA -v ON_ERROR_STOP=1 -d %s -c %s"):format(q(url), q(sql)))
end

describe("scripts/db", function()
  local dbname, url, sqldir

  before_each(function()
    dbname = "strata_scratch_" .. h.uuid():sub(1, 8)
    url = url_for(dbname)
    assert(h.exec("select 1")) -- the test server answers
    assert.equal(0, (sh(("psql -X -q -d %s -c %s"):format(q(h.url), q("create database " .. dbname)))))
    sqldir = os.tmpname()
    os.remove(sqldir)
    assert(os.execute("mkdir -p " .. q(sqldir)))
  end)

  after_each(function()
    sh(("psql -X -q -d %s -c %s"):format(q(h.url), q("drop database if exists " .. dbname .. " with (force)")))
    os.execute("rm -rf " .. q(sqldir))
  end)

  local function write(name, text)
    local f = assert(io.open(sqldir .. "/" .. name, "w"))
    f:write(text)
    f:close()
  end

  local function migrate()
    return sh(("DATABASE_URL=%s STRATA_SQL_DIR=%s scripts/db migrate"):format(q(url), q(sqldir)))
  end

  describe("migrate", function()
    it("applies migrations in name order, once each, and records them", function()
      write("002_b.sql", "insert into t values (2);")
      write("001_a.sql", "create table t (n int primary key);")
      local st, out = migrate()
      assert.equal(0, st, out)
      assert.matches("applied 2 migration", out)
      st, out = migrate()
      assert.equal(0, st, out)
      assert.matches("up to date", out)
      local _, names = psql(url, "select string_agg(name, ',' order by name) from strata_migrations")
      assert.equal("001_a.sql,002_b.sql", names:gsub("%s+$", ""))
      local _, n = psql(url, "select count(*) from t")
      assert.equal("1", n:gsub("%s+$", ""))
    end)

    it("leaves the database as it was when a migration fails midway, naming the file and the error", function()
      write("001_a.sql", "create table t (n int primary key);")
      write("002_bad.sql", "insert into t values (1);\ncreate table u (x int);\ninsert into t values (1);")
      local st, out = migrate()
      assert.are_not.equal(0, st)
      assert.matches("migration 002_bad.sql failed", out)
      assert.matches("23505", out)
      assert.matches("duplicate key", out)
      -- 001 committed; nothing of 002 is left behind, and it is not recorded.
      local _, n = psql(url, "select count(*) from t")
      assert.equal("0", n:gsub("%s+$", ""))
      local _, u = psql(url, "select to_regclass('u') is null")
      assert.equal("t", u:gsub("%s+$", ""))
      local _, names = psql(url, "select string_agg(name, ',') from strata_migrations")
      assert.equal("001_a.sql", names:gsub("%s+$", ""))
    end)

    it("refuses to go on when an applied migration was edited", function()
      write("001_a.sql", "create table t (n int);")
      assert.equal(0, (migrate()))
      write("001_a.sql", "create table t (n bigint);")
      local st, out = migrate()
      assert.are_not.equal(0, st)
      assert.matches("001_a.sql was changed after it was applied", out)
    end)

    it("says clearly that a broken DATABASE_URL cannot be reached", function()
      local st, out = sh(("DATABASE_URL=%s STRATA_SQL_DIR=%s scripts/db migrate")
        :format(q("postgresql:///x?host=/nonexistent-dir"), q(sqldir)))
      assert.are_not.equal(0, st)
      assert.matches("cannot connect to", out)
      assert.matches("No such file or directory", out)
    end)

    it("never touches var/ when DATABASE_URL is set", function()
      local st, out = sh(("DATABASE_URL=%s STRATA_VAR_DIR=/nonexistent-var scripts/db start"):format(q(url)))
      assert.equal(0, st, out)
      assert.matches("DATABASE_URL is set", out)
      st, out = sh(("DATABASE_URL=%s scripts/db url"):format(q(url)))
      assert.equal(url, out:gsub("%s+$", ""))
    end)
  end)

  describe("verify", function()
    it("passes every category on the freshly migrated test database, with nothing unlisted", function()
      local st, out = sh("scripts/verify-schema.sh --exact " .. q(h.url))
      assert.equal(0, st, out)
      for _, label in ipairs({ "Migrations", "Tables", "Functions", "Indexes", "Triggers", "Constraints", "Seed data" }) do
        assert.matches("PASSED %- " .. label, out)
      end
    end)

    it("fails and names what is missing", function()
      local manifest = os.tmpname()
      assert(os.execute(("cp scripts/schema-manifest.txt %s && echo 'table public.no_such_table' >> %s")
        :format(q(manifest), q(manifest))))
      local st, out = sh(("STRATA_SCHEMA_MANIFEST=%s scripts/verify-schema.sh %s"):format(q(manifest), q(h.url)))
      os.remove(manifest)
      assert.equal(1, st)
      assert.matches("FAILED %- Tables\n%s+missing: public.no_such_table", out)
    end)
  end)
end)

-- Where the embedded cluster lives.  As root it runs as the OS user
-- "strata", which cannot enter a checkout under a 0700 directory: a copy of
-- scripts/db in a mktemp -d folder stands for such a checkout.
describe("scripts/db's cluster directory", function()
  local root = sh("test \"$(id -u)\" -eq 0") == 0
  local tmp

  before_each(function()
    local _, out = sh("mktemp -d")
    tmp = out:gsub("%s+$", "")
    assert(os.execute(("mkdir -p %s/a/scripts %s/b/scripts && cp scripts/db %s/a/scripts/ && cp scripts/db %s/b/scripts/")
      :format(q(tmp), q(tmp), q(tmp), q(tmp))))
  end)

  after_each(function()
    sh(("%s/a/scripts/db stop; rm -rf \"$(%s/a/scripts/db dir)\" %s"):format(q(tmp), q(tmp), q(tmp)))
  end)

  local function dir(checkout)
    local st, out = sh(("env -u STRATA_VAR_DIR %s/%s/scripts/db dir"):format(q(tmp), checkout))
    assert.equal(0, st, out)
    return out:gsub("%s+$", "")
  end

  it("is var/ of the checkout, or as root one per checkout under /var/lib/strata", function()
    if not root then
      assert.equal(tmp .. "/a/var", dir("a"))
      return
    end
    assert.matches("^/var/lib/strata/%x+$", dir("a"))
    assert.equal(dir("a"), dir("a"))
    assert.are_not.equal(dir("a"), dir("b"))
  end)

  it("as root, serves a checkout under a 0700 directory, and status, url and stop find it", function()
    if not root then return end
    local db = q(tmp .. "/a/scripts/db")
    local st, out = sh(db .. " start")
    assert.equal(0, st, out)
    st, out = sh(db .. " status")
    assert.equal(0, st, out)
    assert.matches("running, socket in " .. dir("a"):gsub("%p", "%%%0") .. "/run", out)
    st, out = sh(("psql -X -tA -d \"$(%s url)\" -c 'select current_user'"):format(db))
    assert.equal(0, st, out)
    assert.equal("strata", out:gsub("%s+$", ""))
    st, out = sh(db .. " stop")
    assert.equal(0, st, out)
    assert.are_not.equal(0, (sh(db .. " status")))
  end)

  it("as root, still says clearly when STRATA_VAR_DIR names a place the cluster's user cannot reach", function()
    if not root then return end
    local st, out = sh(("STRATA_VAR_DIR=%s/a/var %s/a/scripts/db init"):format(q(tmp), q(tmp)))
    assert.are_not.equal(0, st)
    assert.matches("a parent directory is not searchable by others", out)
  end)
end)
