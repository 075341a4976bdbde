-- Orchestrator deliverable versions (seed 002): numbered 1, 2, 3 ... per
-- deliverable by orchestrator.create_deliverable_version (sql/151: the
-- deliverable's row is locked, so concurrent versions never share or skip
-- a number), exactly one current version (a trigger unsets the previous
-- one in the same transaction).  As the caller: the row policies decide
-- whose deliverables these are.
--
--   POST /v1/orchestrator/deliverables/:id/versions           { content, format?, created_by_type?, task_id?,
--                                                               metadata?, file_attachments?, make_current? } -> 201
--   POST /v1/orchestrator/deliverables/:id/versions/:n/current -> 200 the version, now current

local data = require("strata.data")
local errors = require("strata.rest.errors")

local type = type

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local problem = errors.new

local function failed(err) return errors.new(err.status, err.code, err.message, err.details, err.hint) end

local function create(req)
  local id, body = req.params.id, req.json
  if not id:find(UUID) then return problem(400, "22P02", "deliverable id must be a UUID") end
  if type(body) ~= "table" or (body.content ~= nil and type(body.content) ~= "string") then
    return problem(400, "PGRST102", "the body must be an object whose content is a string")
  end
  local rows, err = data.select("orchestrator.deliverables", { id = "eq." .. id, select = "id" })
  if not rows then return failed(err) end
  if not rows[1] then return problem(404, "PGRST116", "deliverable " .. id .. " not found") end
  -- Absent fields are left out: the function's defaults apply.
  local version
  version, err = data.rpc("orchestrator.create_deliverable_version", {
    p_deliverable_id = id, p_content = body.content, p_format = body.format,
    p_created_by_type = body.created_by_type, p_task_id = body.task_id,
    p_metadata = body.metadata, p_file_attachments = body.file_attachments,
    p_make_current = body.make_current ~= false })
  if not version then return failed(err) end
  return 201, version
end

local function make_current(req)
  local id, n = req.params.id, req.params.n
  if not id:find(UUID) or not n:find("^%d+$") then
    return problem(400, "22P02", "a deliverable id (UUID) and a version number are needed")
  end
  local rows, err = data.update("orchestrator.deliverable_versions",
    { deliverable_id = "eq." .. id, version_number = "eq." .. n }, { is_current_version = true })
  if not rows then return failed(err) end
  if not rows[1] then return problem(404, "PGRST116", ("deliverable %s has no version %s"):format(id, n)) end
  return 200, rows[1]
end

return {
  { method = "POST", path = "/v1/orchestrator/deliverables/:id/versions", handler = create },
  { method = "POST", path = "/v1/orchestrator/deliverables/:id/versions/:n/current", handler = make_current },
}
