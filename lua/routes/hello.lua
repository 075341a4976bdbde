-- Example route file: what a team's custom routes look like (DESIGN.md).
-- GET /v1/hello/:name answers a greeting; it is also what the specs and the
-- benchmark call, so keep it trivial.
return {
  {
    method = "GET", path = "/v1/hello/:name",
    handler = function(req)
      return 200, { hello = req.params.name }
    end,
  },
}
