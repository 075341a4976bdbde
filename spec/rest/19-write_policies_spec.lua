-- /rest/v1 row policies on writes end to end: inserts checked as written,
-- upserts that would overwrite another owner's row, PATCH on own rows.
local cjson = require("cjson")
local h = require("helpers")
local R = require("fixtures.rest")

local call, is_error, mint = R.call, R.is_error, R.mint

describe("REST API #server", function()
  setup(function() R.setup() end)

  teardown(R.teardown)

  describe("row policies on writes", function()
    local A, B, alice, bob

    setup(function()
      A, B = h.uuid(), h.uuid()
      alice = mint("--role authenticated --sub " .. A)
      bob = mint("--role authenticated --sub " .. B)
    end)

    before_each(function()
      h.accepts("truncate public.rest_spec_owned restart identity; insert into public.rest_spec_owned(owner, title) values ("
        .. h.lit(A) .. ", 'alice''s')")
    end)

    local function owned(where)
      return tonumber(h.scalar("select count(*) from public.rest_spec_owned where " .. where))
    end

    it("checks inserted rows as written, defaults included", function()
      local code, doc = call("POST", "rest_spec_owned", { token = alice, body = { owner = A, title = "new" },
        query = { { "select", "title,status" } }, headers = { Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { title = "new", status = "draft" } }, doc)
      code, doc = call("POST", "rest_spec_owned", { token = alice, body = { owner = A, title = "live", status = "published" } })
      assert.equal(403, code)
      is_error(403, "42501", doc)
      code, doc = call("POST", "rest_spec_owned", { token = bob, body = { owner = A, title = "forged" } })
      assert.equal(403, code)
      code, doc = call("POST", "rest_spec_owned", { token = false, body = { owner = A, title = "anon" } })
      assert.equal(401, code)
      assert.equal("42501", doc.code)
      assert.equal(0, owned("title in ('live', 'forged', 'anon')"))
    end)

    it("refuses an upsert that would overwrite another owner's row, writing nothing", function()
      for _, conflict in ipairs({ { "on_conflict", "id" }, { "on_conflict", "title" } }) do
        local code, doc = call("POST", "rest_spec_owned", { token = bob, query = { conflict },
          body = { { id = 1, owner = B, title = "alice's" }, { id = 50, owner = B, title = "bob's" } },
          headers = { Prefer = "resolution=merge-duplicates" } })
        assert.equal(403, code, cjson.encode(doc))
        is_error(403, "42501", doc)
        assert.equal(1, owned("id = 1 and owner = " .. h.lit(A) .. " and title = 'alice''s'"))
        assert.equal(0, owned("owner = " .. h.lit(B)), "the row that did not conflict is rolled back too")
      end
      local code = call("POST", "rest_spec_owned", { token = bob, body = { id = 1, owner = B, title = "taken" },
        headers = { Prefer = "resolution=ignore-duplicates" } })
      assert.equal(201, code, "ignore-duplicates leaves the existing row alone")
      assert.equal(1, owned("id = 1 and owner = " .. h.lit(A) .. " and title = 'alice''s'"))
    end)

    it("lets an owner upsert their own row, checking the merged row against the update policy", function()
      local code, doc = call("POST", "rest_spec_owned", { token = alice, query = { { "select", "id,title" } },
        body = { id = 1, owner = A, title = "renamed" }, headers = { Prefer = "return=representation,resolution=merge-duplicates" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { id = 1, title = "renamed" } }, doc)
      code, doc = call("POST", "rest_spec_owned", { token = alice, body = { id = 1, owner = B, title = "gift" },
        headers = { Prefer = "resolution=merge-duplicates" } })
      assert.equal(403, code, "the merged row would leave the owner's rows")
      assert.equal("42501", doc.code)
      assert.equal(1, owned("id = 1 and owner = " .. h.lit(A) .. " and title = 'renamed'"))
    end)

    it("PATCH sees only the caller's rows and checks the changed rows", function()
      local code, doc = call("PATCH", "rest_spec_owned", { token = bob, query = { { "id", "eq.1" } }, body = { title = "bob was here" },
        headers = { Prefer = "return=representation" } })
      assert.equal(200, code)
      assert.same({}, doc)
      code, doc = call("PATCH", "rest_spec_owned", { token = alice, query = { { "id", "eq.1" } }, body = { owner = B } })
      assert.equal(403, code)
      assert.equal("42501", doc.code)
      code = call("DELETE", "rest_spec_owned", { token = bob, query = { { "id", "eq.1" } } })
      assert.equal(204, code)
      assert.equal(1, owned("id = 1 and owner = " .. h.lit(A) .. " and title = 'alice''s'"))
    end)
  end)
end)
