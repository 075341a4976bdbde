local h = require("helpers")

describe("auth schema", function()
  it("auth.uid() and auth.role() read request.jwt.claims", function()
    local id = h.uuid()
    local rows = assert(h.query(
      "select auth.uid() as uid, auth.role() as role, auth.jwt()->>'sub' as sub",
      ([[select set_config('request.jwt.claims', '{"sub":"%s","role":"authenticated"}', true)]]):format(id)))
    assert.same({ { uid = id, role = "authenticated", sub = id } }, rows)
  end)

  it("auth.uid() is NULL without claims", function()
    assert.is_nil(h.scalar("select auth.uid()"))
  end)

  it("auth.users refuses a duplicate email", function()
    local id = h.user()
    h.refuses("23505", ("insert into auth.users(email) values (%s)"):format(h.lit(id .. "@example.test")))
  end)

  it("extensions.uuid_generate_v4() answers version-4 UUIDs", function()
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", h.scalar("select extensions.uuid_generate_v4()"))
  end)
end)
