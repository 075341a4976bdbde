-- The Lua route of scripts/bench/db.sh: one indexed SELECT by primary key
-- through strata.db (the worker's connection pool), answered as JSON.
-- pgbench runs the same statement (scripts/bench/db_item.sql).
local db = require("strata.db")

return {
  {
    method = "GET", path = "/bench/item/:id",
    handler = function(req)
      local rows = assert(db.query("select id, payload from strata_bench.bench_items where id = $1",
        tonumber(req.params.id)))
      if rows[1] == nil then return 404, { error = "no such item" } end
      return 200, rows[1]
    end,
  },
}
