-- strata.rest.openapi: GET /rest/v1/ answers the OpenAPI (Swagger 2.0)
-- document of the profile's schema as PostgREST generates it
-- (src/PostgREST/Response/OpenAPI.hs): a path per table, view and function
-- the caller may use (a Lua policy that can answer something other than
-- "no"; a function with an entry in lua/policies/rpc.lua; service_role
-- everything), definitions with column types, formats, COMMENT ON
-- descriptions, required columns and the primary and foreign key notes,
-- and PostgREST's shared parameters.  Built in Lua from the catalog.

local cjson = require("cjson")
local policy = require("strata.rest.policy")

local ipairs, pairs, concat, sort = ipairs, pairs, table.concat, table.sort

local M = {}

M.CONTENT_TYPE = "application/openapi+json; charset=utf-8"

local MIME = { "application/json", "application/vnd.pgrst.object+json;nulls=stripped",
  "application/vnd.pgrst.object+json", "text/csv" }

local SWAGGER_TYPES = { ["character varying"] = "string", character = "string", text = "string",
  boolean = "boolean", smallint = "integer", integer = "integer", bigint = "integer", numeric = "number",
  real = "number", ["double precision"] = "number" }

-- A column type without its modifier ("character varying(20)" ->
-- "character varying", 20) as PostgREST's schema cache holds it.
local function base_type(ty)
  local base, n = ty:match("^(.-)%((%d+)%)$")
  if base then return base, tonumber(n) end
  base = ty:gsub("%(%d+,?%d*%)", "")
  return base, nil
end

-- PostgREST's toSwaggerType: json and jsonb have none.
local function swagger_type(ty)
  if ty == "json" or ty == "jsonb" then return nil end
  if ty:sub(-2) == "[]" then return "array" end
  return SWAGGER_TYPES[ty] or "string"
end

local function items_of(ty)
  if ty:sub(-2) ~= "[]" then return nil end
  local t = swagger_type(ty:sub(1, -3))
  return t and { type = t } or nil
end

-- A COMMENT ON text as PostgREST splits it: the first line the summary,
-- the rest (leading newlines dropped) the description.
local function split_comment(text)
  if type(text) ~= "string" then return nil, nil end
  local first, rest = text:match("^([^\n]*)\n(.*)$")
  if not first then return text, nil end
  rest = rest:gsub("^\n+", "")
  return first, rest ~= "" and rest or nil
end

-- The single-column foreign key of t's column, as "table.column".
local function fk_target(t, col)
  for _, fk in ipairs(t.fks) do
    if #fk.columns == 1 and fk.columns[1] == col and not fk.is_view then
      return fk.ref_table, fk.ref_columns[1]
    end
  end
end

local function property(t, c, pk)
  local ty, len = base_type(c.type)
  local notes = { "Note:" }
  if pk[c.name] then notes[#notes + 1] = "This is a Primary Key.<pk/>" end
  local ft, fc = fk_target(t, c.name)
  if ft then notes[#notes + 1] = ("This is a Foreign Key to `%s.%s`.<fk table='%s' column='%s'/>"):format(ft, fc, ft, fc) end
  local desc = type(c.description) == "string" and c.description or nil
  if #notes > 1 then desc = (desc and (desc .. "\n\n") or "") .. concat(notes, "\n") end
  return { type = swagger_type(ty), format = ty, description = desc, items = items_of(ty),
    maxLength = (ty == "character varying" or ty == "character") and len or nil }
end

local function definition(t)
  local pk, props, required = {}, {}, {}
  for _, name in ipairs(t.pk) do pk[name] = true end
  for _, c in ipairs(t.column_list) do
    props[c.name] = property(t, c, pk)
    if not c.nullable then required[#required + 1] = c.name end
  end
  local def = { type = "object", properties = props, description = type(t.description) == "string" and t.description or nil }
  if #required > 0 then def.required = required end
  return def
end

local function ref(name) return { ["$ref"] = "#/parameters/" .. name } end

local function query_param(name, description)
  return { name = name, description = description, required = false, ["in"] = "query", type = "string" }
end

local function prefer_param(values)
  return { name = "Prefer", description = "Preference", required = false, ["in"] = "header", type = "string",
    enum = values }
end

local function shared_parameters()
  return {
    preferParams = prefer_param({ "params=single-object" }),
    preferReturn = prefer_param({ "return=representation", "return=minimal", "return=none" }),
    preferCount = prefer_param({ "count=none" }),
    preferPost = prefer_param({ "return=representation", "return=minimal", "return=none",
      "resolution=ignore-duplicates", "resolution=merge-duplicates" }),
    select = query_param("select", "Filtering Columns"),
    on_conflict = query_param("on_conflict", "On Conflict"),
    order = query_param("order", "Ordering"),
    range = { name = "Range", description = "Limiting and Pagination", required = false, ["in"] = "header",
      type = "string" },
    rangeUnit = { name = "Range-Unit", description = "Limiting and Pagination", required = false, ["in"] = "header",
      type = "string", default = "items" },
    offset = query_param("offset", "Limiting and Pagination"),
    limit = query_param("limit", "Limiting and Pagination"),
  }
end

local function allowed(ctx, t, action)
  local d = policy.decide(ctx, t.schema, t.name, action)
  return d ~= nil and d ~= false
end

local function table_path(ctx, t, params)
  local tn = t.name
  local filters = {}
  for _, c in ipairs(t.column_list) do
    local key = "rowFilter." .. tn .. "." .. c.name
    params[key] = query_param(c.name, type(c.description) == "string" and c.description or nil)
    filters[#filters + 1] = ref(key)
  end
  params["body." .. tn] = { name = tn, description = tn, required = false, ["in"] = "body",
    schema = { ["$ref"] = "#/definitions/" .. tn } }
  local summary, description = split_comment(t.description)
  local function op(extra, responses)
    local list = {}
    for _, p in ipairs(filters) do list[#list + 1] = p end
    for _, name in ipairs(extra) do list[#list + 1] = ref(name) end
    return { tags = { tn }, summary = summary, description = description, parameters = list, responses = responses }
  end
  local item = { get = op({ "select", "order", "range", "rangeUnit", "offset", "limit", "preferCount" }, {
    ["200"] = { description = "OK", schema = { type = "array", items = { ["$ref"] = "#/definitions/" .. tn } } },
    ["206"] = { description = "Partial Content" } }) }
  if allowed(ctx, t, "insert") or allowed(ctx, t, "update") or allowed(ctx, t, "delete") then
    item.post = { tags = { tn }, summary = summary, description = description,
      parameters = { ref("body." .. tn), ref("select"), ref("preferPost") }, responses = { ["201"] = { description = "Created" } } }
    item.patch = op({ "body." .. tn, "preferReturn" }, { ["204"] = { description = "No Content" } })
    item.delete = op({ "preferReturn" }, { ["204"] = { description = "No Content" } })
  end
  return item
end

local function function_path(f)
  local summary, description = split_comment(f.description)
  local props, required, getp = {}, {}, {}
  for i, a in ipairs(f.args) do
    if a.name ~= "" then
      local ty = base_type(a.type)
      props[a.name] = { type = swagger_type(ty), format = ty, items = items_of(ty) }
      local req = i <= f.required
      if req then required[#required + 1] = a.name end
      local p = { name = a.name, required = req, ["in"] = "query" }
      if a.variadic then -- repeated keys, PostgREST's CollectionMulti
        local elem = ty:gsub("%[%]$", "")
        p.type, p.collectionFormat, p.items = "array", "multi", { type = swagger_type(elem) or "string", format = elem }
      else
        local st = swagger_type(ty)
        p.type, p.format = (st == nil or st == "array") and "string" or st, ty -- {a,b} in a query
      end
      getp[#getp + 1] = p
    end
  end
  local schema = { type = "object", properties = props, description = type(f.description) == "string" and f.description or nil }
  if #required > 0 then schema.required = required end
  local function op(params)
    return { tags = { "(rpc) " .. f.name }, summary = summary, description = description, parameters = params,
      produces = { "application/json", "application/vnd.pgrst.object+json;nulls=stripped", "application/vnd.pgrst.object+json" },
      responses = { ["200"] = { description = "OK" } } }
  end
  local item = { post = op({ { name = "args", required = true, ["in"] = "body", schema = schema }, ref("preferParams") }) }
  if f.volatility ~= "v" then item.get = op(getp) end
  return item
end

-- cjson writes an empty Lua table as {}, which Swagger refuses where an
-- array belongs: an operation without parameters leaves the key out.
local function drop_empty_parameters(doc)
  for _, item in pairs(doc.paths) do
    for _, op in pairs(item) do
      if op.parameters and #op.parameters == 0 then op.parameters = nil end
    end
  end
end

-- The overload PostgREST's document shows: it builds one path per
-- function, in its order (by the number of parameters, then description,
-- then parameters by name and type), so the last one stays.
local function shown_overload(list)
  local function key(f)
    local parts = { ("%05d"):format(#f.args), type(f.description) == "string" and ("1" .. f.description) or "0" }
    for _, a in ipairs(f.args) do parts[#parts + 1] = a.name .. "\0" .. a.type end
    return concat(parts, "\1")
  end
  local best, best_key = nil, nil
  for _, f in ipairs(list) do
    local k = key(f)
    if not best or k > best_key then best, best_key = f, k end
  end
  return best
end

--- The document for ctx over schema s of catalog cat (strata.rest.catalog),
-- host the request's Host header; its JSON text.
function M.document(ctx, cat, s, host)
  local params = shared_parameters()
  local paths = { ["/"] = { get = { tags = { "Introspection" }, summary = "OpenAPI description (this document)",
    produces = { "application/openapi+json", "application/json" }, responses = { ["200"] = { description = "OK" } } } } }
  local definitions = {}
  local names = {}
  for name in pairs(cat.schemas[s].tables) do names[#names + 1] = name end
  sort(names)
  for _, name in ipairs(names) do
    local t = cat.schemas[s].tables[name]
    if allowed(ctx, t, "select") or allowed(ctx, t, "insert") or allowed(ctx, t, "update") or allowed(ctx, t, "delete") then
      definitions[name] = definition(t)
      paths["/" .. name] = table_path(ctx, t, params)
    end
  end
  for name, list in pairs(cat.schemas[s].functions) do
    local _, entry = policy.rpc_entry(s, name)
    if ctx.role == "service_role" or type(entry) == "function" then
      paths["/rpc/" .. name] = function_path(shown_overload(list))
    end
  end
  local doc = {
    swagger = "2.0",
    info = { title = "PostgREST API", description = "This is a dynamic API generated by PostgREST",
      version = "12.2.0 (strata)" },
    externalDocs = { description = "PostgREST Documentation", url = "https://postgrest.org/en/v12/references/api.html" },
    host = host, basePath = "/rest/v1", schemes = { "http" },
    consumes = MIME, produces = MIME, paths = paths, definitions = definitions, parameters = params,
  }
  if next(definitions) == nil then doc.definitions = nil end
  drop_empty_parameters(doc)
  return (cjson.encode(doc):gsub("\\/", "/"))
end

return M
