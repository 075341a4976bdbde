-- The change feed of the native broker engine (sql/060_broker_notify.sql):
-- one NOTIFY per statement with the changed ids, a resync request past 200.
local cjson = require("cjson")
local h = require("helpers")

-- Runs sql in a psql session that LISTENs first; the payloads it received,
-- their stamps (sql/110_broker_notify_commit_time.sql) taken out into a
-- second list: {x = transaction id, c = clock_timestamp()} each.
local function notifications(sql)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("listen strata_broker;\n", sql, "\nselect 1;\n")
  f:close()
  local p = assert(io.popen(("psql -X -v ON_ERROR_STOP=1 -d %s -f %s 2>&1"):format(
    "'" .. h.url:gsub("'", "'\\''") .. "'", path)))
  local out = p:read("a")
  p:close()
  os.remove(path)
  local list, stamps = {}, {}
  for payload in out:gmatch('Asynchronous notification "strata_broker" with payload "(.-)" received') do
    local n = cjson.decode(payload)
    stamps[#stamps + 1] = { x = n.x, c = n.c }
    n.x, n.c = nil, nil
    list[#list + 1] = n
  end
  return list, out, stamps
end

describe("strata_broker notifications", function()
  local broker

  setup(function()
    broker = h.uuid()
    h.accepts(("insert into data_broker(id, name) values (%s, 'notify')"):format(h.lit(broker)))
  end)

  it("names the values a statement inserted, updated or deleted", function()
    local org = h.uuid()
    h.accepts(("insert into organizations(id, name, slug) values (%s, 'o', %s)"):format(h.lit(org), h.lit("n-" .. org)))
    local v = h.uuid()
    local list, out = notifications(([[
      insert into broker_values(id, broker_id, organization_id, value) values (%s, %s, %s, '1');
      update broker_values set value = '2' where id = %s;
      delete from broker_values where id = %s;]]):format(h.lit(v), h.lit(broker), h.lit(org), h.lit(v), h.lit(v)))
    assert.equal(3, #list, out)
    for _, n in ipairs(list) do
      assert.equal("v", n.t)
      assert.same({ v }, n.ids)
    end
  end)

  it("names workspaces and brokers that changed", function()
    local org, ws = h.uuid(), h.uuid()
    h.accepts(("insert into organizations(id, name, slug) values (%s, 'o', %s)"):format(h.lit(org), h.lit("w-" .. org)))
    local list = notifications(([[
      insert into workspaces(id, organization_id, name) values (%s, %s, 'w');
      update data_broker set description = 'd' where id = %s;]]):format(h.lit(ws), h.lit(org), h.lit(broker)))
    assert.same({ { t = "w", ids = { ws } }, { t = "b", ids = { broker } } }, list)
  end)

  it("asks for a resynchronisation instead of listing more than 200 ids", function()
    local list = notifications(([[
      insert into broker_values(broker_id, is_global, user_id, value)
        select %s, false, null, '1' from generate_series(1, 0);
      insert into data_broker(name) select 'bulk ' || g from generate_series(1, 250) g;]]):format(h.lit(broker)))
    assert.same({ { t = "b", resync = true } }, list)
  end)

  it("stamps each message with its transaction and the statement's clock_timestamp()", function()
    local list, out, stamps = notifications(([[
      begin;
      insert into data_broker(name) select 'stamp ' || g from generate_series(1, 200) g;
      insert into data_broker(name) values ('stamp 201');
      commit;
      update data_broker set description = 'd' where id = %s;]]):format(h.lit(broker)))
    assert.equal(3, #list, out)
    assert.equal(200, #list[1].ids, "200 ids still fit a payload")
    for _, s in ipairs(stamps) do
      assert.matches("^%d+$", s.x)
      assert.is_number(s.c)
    end
    assert.equal(stamps[1].x, stamps[2].x, "one transaction")
    assert.are_not.equal(stamps[2].x, stamps[3].x, "the next one")
    assert.is_true(stamps[1].c <= stamps[2].c and stamps[2].c <= stamps[3].c, "in commit order")
    local db_now = tonumber(h.scalar("select extract(epoch from clock_timestamp())"))
    assert.is_true(stamps[3].c <= db_now, "stamped before now")
  end)

  it("sends nothing for a statement that changed no row", function()
    local list = notifications("update broker_values set value = value where false;")
    assert.same({}, list)
  end)

  it("reaches the listener for deletes cascading from a workspace", function()
    local org, ws = h.uuid(), h.uuid()
    h.accepts(([[insert into organizations(id, name, slug) values (%s, 'o', %s);
      insert into workspaces(id, organization_id, name) values (%s, %s, 'w');
      insert into broker_values(broker_id, workspace_id, value) values (%s, %s, '"x"')]])
      :format(h.lit(org), h.lit("c-" .. org), h.lit(ws), h.lit(org), h.lit(broker), h.lit(ws)))
    local list = notifications(("delete from workspaces where id = %s;"):format(h.lit(ws)))
    local kinds = {}
    for _, n in ipairs(list) do kinds[n.t] = true end
    assert.is_true(kinds.v, "the cascaded value delete is announced")
    assert.is_true(kinds.w)
  end)
end)
