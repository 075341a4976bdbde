-- document_agent's update tool: a new version of a document the caller may
-- read (the same id, version_number + 1, the new content), written as the
-- caller under the row policies (strata.data).  A document the caller's
-- policies hide is "not found", as one that does not exist.
local data = require("strata.data")

return {
  description = "Update an existing document (writes its next version)",
  parameters = {
    type = "object",
    properties = {
      id = { type = "string", description = "The document's id" },
      content = { type = "string", description = "The whole new content" },
      title = { type = "string", description = "A new title (optional)" },
    },
    required = { "id", "content" },
  },
  run = function(args, ctx)
    if type(args.id) ~= "string" or not args.id:match("^%x+%-%x+%-%x+%-%x+%-%x+$") then return nil, "id: a document id is required" end
    if type(args.content) ~= "string" then return nil, "content: a string is required" end
    local rows, err = data.select("Document", { select = "id,title,kind,chat_id,version_number",
      id = "eq." .. args.id, order = "version_number.desc", limit = 1 })
    if not rows then return nil, err end
    local last = rows[1]
    if not last then return nil, "no document " .. args.id end
    local row
    row, err = data.insert("Document", { id = last.id, title = type(args.title) == "string" and args.title or last.title,
      content = args.content, kind = last.kind, user_id = ctx.uid, chat_id = last.chat_id,
      version_number = last.version_number + 1, metadata = { ai_task_id = ctx.task_id } },
      { single = true, select = "id,title,version_number" })
    if not row then return nil, err end
    return { id = row.id, title = row.title, version_number = row.version_number }
  end,
}
