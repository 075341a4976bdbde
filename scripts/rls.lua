-- scripts/rls.lua LUA_DIR SCHEMAS [VALIDATED] < catalog.tsv > rls.sql
-- The row level security of the Lua row policies (strata.rls), as one SQL
-- script for `scripts/db rls`.  catalog.tsv: "schema<TAB>table<TAB>column<TAB>type"
-- per column of every table of the exposed schemas (SCHEMAS: a,b,c).
-- VALIDATED: the names of lua/validators/*.lua (a,b), whose tables refuse
-- API roles' writes that bypass the validators.  The
-- tables whose policies SQL cannot express are listed on stderr: RLS
-- denies the API roles everything on them.
local lua_dir, schema_list, validated_list = arg[1], arg[2], arg[3] or ""
if not lua_dir or not schema_list then
  io.stderr:write("usage: lua5.4 scripts/rls.lua LUA_DIR SCHEMAS [VALIDATED] < catalog.tsv\n")
  os.exit(2)
end
package.path = lua_dir .. "/?.lua;" .. lua_dir .. "/?/init.lua;" .. package.path
local rls = require("strata.rls")

local catalog = {}
for line in io.lines() do
  local schema, tbl, col, typ = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
  if schema then
    catalog[schema] = catalog[schema] or {}
    local t = catalog[schema][tbl] or { name = tbl, columns = {} }
    catalog[schema][tbl] = t
    t.columns[col] = typ
  end
end

-- The policy module of schema.table: nil without a file, false when it does not load.
local function load(schema, tbl)
  local path = ("%s/policies/%s/%s.lua"):format(lua_dir, schema, tbl)
  local f = io.open(path, "r")
  if not f then return nil end
  f:close()
  local ok, mod = pcall(dofile, path)
  if not ok or type(mod) ~= "table" then
    io.stderr:write(("rls: %s does not load: %s\n"):format(path, tostring(mod)))
    return false
  end
  return mod
end

local schemas = {}
for s in schema_list:gmatch("[^,]+") do schemas[#schemas + 1] = s end
local validated = {}
for v in validated_list:gmatch("[^,]+") do validated[#validated + 1] = v end
local sql, bad = rls.script(catalog, schemas, load, validated)
io.write(sql)
for _, line in ipairs(bad) do io.stderr:write("rls: not expressible in SQL, denied to the API roles: " .. line .. "\n") end
