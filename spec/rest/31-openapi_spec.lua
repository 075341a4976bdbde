-- GET /rest/v1/: the OpenAPI (Swagger 2.0) document as PostgREST generates
-- it (Response/OpenAPI.hs, test/spec/Feature/OpenApi), validated by
-- @apidevtools/swagger-parser (spec/js/openapi_validate.mjs, pinned in
-- spec/js/package.json).
local cjson = require("cjson")
local srv = require("server_helpers")
local R = require("fixtures.rest")

local COMMENTS = [[
comment on table public.rest_spec_items is 'Items of the fixture

Five known rows.';
comment on column public.rest_spec_items.name is 'The unique name';
comment on function public.rest_spec_add(int, int) is 'Adds two numbers';
]]

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or (code or 1), out
end

local function ensure_node_modules()
  local st, out = sh("node --version")
  assert(st == 0, "spec/rest/31-openapi_spec.lua needs Node.js 20+: " .. out)
  local f = io.open("spec/js/node_modules/@apidevtools/swagger-parser/package.json")
  if f then f:close() return end
  st, out = sh("npm ci --prefix spec/js --no-audit --no-fund --loglevel=error")
  assert(st == 0, "`npm ci --prefix spec/js` failed (is the npm registry reachable?):\n" .. out)
end

-- The validator's verdict on the document the bearer of tok gets.
local function fetch_doc(tok, profile)
  local st, out = sh(("STRATA_REST_URL=%s STRATA_TOKEN=%s STRATA_PROFILE=%s node spec/js/openapi_validate.mjs"):format(
    srv.quote(("http://127.0.0.1:%d/rest/v1/"):format(R.server.port)), srv.quote(tok or ""), srv.quote(profile or "")))
  assert(st == 0, out)
  local ok, doc = pcall(cjson.decode, out:match("([^\n]+)\n?$") or "")
  assert(ok and type(doc) == "table", out)
  return doc
end

describe("REST OpenAPI #server", function()
  setup(function()
    ensure_node_modules()
    R.setup({ sql = COMMENTS })
  end)
  teardown(R.teardown)

  it("answers a valid Swagger 2.0 document with PostgREST's Content-Type", function()
    local r = fetch_doc(R.SERVICE)
    assert.equal(200, r.status)
    assert.equal("application/openapi+json; charset=utf-8", r.contentType)
    assert.is_true(r.valid, tostring(r.error))
    assert.equal("2.0", r.doc.swagger)
    assert.equal("/rest/v1", r.doc.basePath)
    assert.same({ "application/openapi+json", "application/json" }, r.doc.paths["/"].get.produces)
  end)

  it("describes tables: column types and formats, required columns, comments, key notes", function()
    local doc = fetch_doc(R.SERVICE).doc
    local items = doc.definitions.rest_spec_items
    assert.equal("object", items.type)
    assert.same({ "id", "name" }, items.required)
    assert.same({ type = "integer", format = "integer", description = "Note:\nThis is a Primary Key.<pk/>" },
      items.properties.id)
    assert.same({ type = "string", format = "text", description = "The unique name" }, items.properties.name)
    assert.same({ type = "array", format = "text[]", items = { type = "string" } }, items.properties.tags)
    assert.same({ format = "jsonb" }, items.properties.meta)
    assert.equal("Note:\nThis is a Foreign Key to `rest_spec_items.id`.<fk table='rest_spec_items' column='id'/>",
      doc.definitions.rest_spec_children.properties.item_id.description)
    local get = doc.paths["/rest_spec_items"].get
    assert.equal("Items of the fixture", get.summary)
    assert.equal("Five known rows.", get.description)
    assert.same({ "rest_spec_items" }, get.tags)
    assert.same({ ["$ref"] = "#/parameters/rowFilter.rest_spec_items.id" }, get.parameters[1])
    assert.same({ ["$ref"] = "#/definitions/rest_spec_items" }, get.responses["200"].schema.items)
    assert.is_table(doc.paths["/rest_spec_items"].post)
    assert.same({ name = "Range-Unit", description = "Limiting and Pagination", required = false, ["in"] = "header",
      type = "string", default = "items" }, doc.parameters.rangeUnit)
  end)

  it("describes functions: POST with a body schema, GET for the stable ones", function()
    local doc = fetch_doc(R.SERVICE).doc
    local add = doc.paths["/rpc/rest_spec_add"]
    assert.equal("Adds two numbers", add.post.summary)
    assert.same({ "(rpc) rest_spec_add" }, add.post.tags)
    local body = add.post.parameters[1]
    assert.equal("body", body["in"])
    assert.same({ "a" }, body.schema.required)
    assert.same({ type = "integer", format = "integer" }, body.schema.properties.b)
    assert.same({ name = "a", required = true, ["in"] = "query", type = "integer", format = "integer" },
      add.get.parameters[1])
    assert.is_nil(doc.paths["/rpc/rest_spec_bump"].get) -- volatile: POST only
  end)

  it("shows one overload per function name, the one PostgREST's ordering puts last", function()
    -- PostgREST sorts overloads by their number of parameters, then by
    -- description and parameters, and keeps the last path of a name:
    -- rest_spec_pick(x text) after rest_spec_pick(x int).
    local pick = fetch_doc(R.SERVICE).doc.paths["/rpc/rest_spec_pick"]
    assert.same({ name = "x", required = true, ["in"] = "query", type = "string", format = "text" },
      pick.get.parameters[1])
    assert.same({ type = "string", format = "text" }, pick.post.parameters[1].schema.properties.x)
  end)

  it("lists only what the caller may use, and honours Accept-Profile", function()
    local anon = fetch_doc(R.mint("--role anon"))
    assert.is_true(anon.valid, tostring(anon.error))
    assert.is_table(anon.doc.paths["/rest_spec_items"])
    assert.is_nil(anon.doc.paths["/rest_spec_secret"]) -- no policy file: service_role's only
    assert.is_table(fetch_doc(R.SERVICE).doc.paths["/rest_spec_secret"])
    local orch = fetch_doc(R.SERVICE, "orchestrator")
    assert.is_true(orch.valid, tostring(orch.error))
    assert.is_table(orch.doc.paths["/rest_spec_things"])
    assert.is_nil(orch.doc.paths["/rest_spec_items"])
  end)

  it("refuses an Accept it cannot produce with 406 PGRST107", function()
    local code, doc = R.get("", nil, { Accept = "text/csv" })
    assert.equal(406, code)
    assert.equal("PGRST107", doc.code)
  end)
end)
