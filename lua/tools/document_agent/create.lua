-- document_agent's create tool: the model asks for a new document; it is
-- written as a "Document" row (version 1) as the caller, under the row
-- policies (strata.data), bound to the run's chat when there is one.
local data = require("strata.data")

local KINDS = { text = true, ["python code"] = true, ["mermaid code"] = true, sheet = true }

return {
  description = "Create a new document",
  parameters = {
    type = "object",
    properties = {
      title = { type = "string", description = "The document's title" },
      content = { type = "string", description = "The whole content" },
      kind = { type = "string", enum = { "text", "python code", "mermaid code", "sheet" } },
    },
    required = { "title", "content" },
  },
  -- ctx: uid, run_id, task_id, chat_id, agent_type.
  run = function(args, ctx)
    if type(args.title) ~= "string" or args.title == "" then return nil, "title: a non-empty string is required" end
    if type(args.content) ~= "string" then return nil, "content: a string is required" end
    local kind = args.kind or "text"
    if not KINDS[kind] then return nil, "kind: must be text, python code, mermaid code or sheet" end
    local row, err = data.insert("Document", { title = args.title, content = args.content, kind = kind,
      user_id = ctx.uid, chat_id = ctx.chat_id, metadata = { ai_task_id = ctx.task_id } },
      { single = true, select = "id,title,kind,version_number" })
    if not row then return nil, err end
    return { id = row.id, title = row.title, kind = row.kind, version_number = row.version_number }
  end,
}
