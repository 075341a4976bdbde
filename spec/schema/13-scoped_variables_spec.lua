-- sql/012_scoped_variables.sql: seed 001's user_variables, org_variables and
-- project_variables.
local h = require("helpers")

local fmt = string.format
local lit = h.lit

local function count(sql)
  return tonumber(h.scalar(sql))
end

local function new_org()
  local id = h.uuid()
  h.accepts(fmt("insert into public.organizations (id, name, slug) values (%s, 'Acme', %s)", lit(id), lit("acme-" .. id)))
  return id
end

local function new_project()
  local id = h.uuid()
  h.accepts(fmt("insert into public.projects (id, name) values (%s, 'AI Assistant')", lit(id)))
  return id
end

-- The three tables differ only in their owner column and what it references.
local TABLES = {
  { name = "user_variables", owner = "user_id", new_owner = function() return h.user() end,
    delete_owner = "delete from auth.users where id = %s" },
  { name = "org_variables", owner = "org_id", new_owner = new_org,
    delete_owner = "delete from public.organizations where id = %s" },
  { name = "project_variables", owner = "project_id", new_owner = new_project,
    delete_owner = "delete from public.projects where id = %s" },
}

local function insert_sql(t, owner, key, value)
  return fmt("insert into public.%s (%s, key, value, description) values (%s, %s, %s, 'example')",
    t.name, t.owner, lit(owner), lit(key), lit(value))
end

for _, t in ipairs(TABLES) do
  describe("public." .. t.name, function()
    it("accepts a variable and stamps created_at / updated_at", function()
      local owner = t.new_owner()
      h.accepts(insert_sql(t, owner, "name", "John Doe"))
      assert.same({ { key = "name", value = "John Doe", stamped = "t" } }, h.query(fmt(
        "select key, value, created_at is not null and updated_at is not null as stamped from public.%s where %s = %s",
        t.name, t.owner, lit(owner))))
    end)

    it("refuses a second variable with the same key for the same owner", function()
      local owner = t.new_owner()
      h.accepts(insert_sql(t, owner, "timezone", "America/New_York"))
      local err = h.refuses("23505", insert_sql(t, owner, "timezone", "Europe/Paris"))
      assert.matches(t.name .. "_" .. t.owner .. "_key_key", err.raw)
    end)

    it("accepts the same key for two owners", function()
      h.accepts(insert_sql(t, t.new_owner(), "locale", "en-US"))
      h.accepts(insert_sql(t, t.new_owner(), "locale", "fr-FR"))
    end)

    it("refuses a second variable with the same id", function()
      local id = h.uuid()
      local owner = t.new_owner()
      h.accepts(fmt("insert into public.%s (id, %s, key, value) values (%s, %s, 'a', '1')", t.name, t.owner, lit(id), lit(owner)))
      h.refuses("23505", fmt("insert into public.%s (id, %s, key, value) values (%s, %s, 'b', '2')", t.name, t.owner, lit(id), lit(owner)))
    end)

    it("refuses a variable without owner, key or value", function()
      local owner = t.new_owner()
      h.refuses("23502", fmt("insert into public.%s (key, value) values ('k', 'v')", t.name))
      h.refuses("23502", fmt("insert into public.%s (%s, value) values (%s, 'v')", t.name, t.owner, lit(owner)))
      h.refuses("23502", fmt("insert into public.%s (%s, key) values (%s, 'k')", t.name, t.owner, lit(owner)))
    end)

    it("refuses an owner that does not exist", function()
      h.refuses("23503", insert_sql(t, h.uuid(), "k", "v"))
    end)

    it("deletes the variables of a deleted owner", function()
      local owner, other = t.new_owner(), t.new_owner()
      h.accepts(insert_sql(t, owner, "a", "1") .. ";" .. insert_sql(t, owner, "b", "2") .. ";" .. insert_sql(t, other, "a", "1"))
      h.accepts(fmt(t.delete_owner, lit(owner)))
      assert.equal(0, count(fmt("select count(*) from public.%s where %s = %s", t.name, t.owner, lit(owner))))
      assert.equal(1, count(fmt("select count(*) from public.%s where %s = %s", t.name, t.owner, lit(other))))
    end)

    it("has the seed's index on the owner column", function()
      assert.equal(fmt("CREATE INDEX idx_%s_%s ON public.%s USING btree (%s)", t.name, t.owner, t.name, t.owner),
        h.scalar(fmt("select indexdef from pg_indexes where schemaname = 'public' and indexname = 'idx_%s_%s'", t.name, t.owner)))
    end)
  end)
end
