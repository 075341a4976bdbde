-- spec/fuzz/catalog.lua: a small schema for the REST drivers, answered by
-- the stub database to strata.rest.catalog's three catalog statements
-- (rows shaped as those statements return them).  Two tables with real
-- policies (lua/policies/public/Chat.lua, Message_v2.lua) and a foreign
-- key between them, for embedding; a scalar and a set-returning function
-- for rpc/.  Every other statement answers "no database".
local stub = require("stub")

local function col(name, type, nullable, default)
  return { name = name, type = type, nullable = nullable ~= false, default = default or false }
end

local TABLES = {
  { schema = "public", name = "Chat", kind = "r", pk = { "id" }, rls = false, rls_cmds = {},
    columns = { col("id", "uuid", false, true), col("createdAt", "timestamp without time zone", false, true),
      col("title", "text", false), col("user_id", "uuid", false), col("visibility", "character varying(10)", false, true),
      col("lastContext", "jsonb"), col("total_input_tokens", "integer", true, true) } },
  { schema = "public", name = "Message_v2", kind = "r", pk = { "id" }, rls = false, rls_cmds = {},
    columns = { col("id", "uuid", false, true), col("chatId", "uuid", false), col("role", "character varying(20)", false),
      col("parts", "json", false), col("attachments", "json", false, true),
      col("createdAt", "timestamp without time zone", false, true) } },
}

local FUNCTIONS = {
  { schema = "public", name = "add_numbers", volatility = "i", returns_set = false, return_kind = "b",
    return_type = "integer", ndefaults = 1, arg_names = { "a", "b" }, arg_modes = {},
    in_types = { "integer", "integer" }, nargs = 2 },
  { schema = "public", name = "search_chats", volatility = "s", returns_set = true, return_kind = "c",
    return_type = '"Chat"', ndefaults = 0, arg_names = { "q", "tags" }, arg_modes = { "i", "v" },
    in_types = { "text", "text[]" }, nargs = 2 },
}

local FKS = {
  { name = "Message_v2_chatId_fkey", schema = "public", table_name = "Message_v2", ref_schema = "public",
    ref_table = "Chat", columns = { "chatId" }, ref_columns = { "id" }, is_unique = false, is_view = false,
    ref_is_view = false },
}

-- Fresh copies: strata.rest.catalog keeps and changes what it reads.
local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- Client text reaches SQL only as a parameter or a quoted identifier
-- (strata.rest.sql's qi: "a""b").  So, read with PostgreSQL's quoting
-- rules, every statement ends outside any quote, and outside quotes it
-- has no statement separator or comment that client text could have
-- brought.  A statement that breaks this is a finding.
local function check_sql(sql)
  local i, n = 1, #sql
  while i <= n do
    local c = sql:sub(i, i)
    if c == '"' or c == "'" then
      local close = i
      repeat
        close = sql:find(c, close + 1, true)
        stub.expect(close, "unterminated %s in SQL: %s", c, sql)
        local doubled = sql:sub(close + 1, close + 1) == c
        if doubled then close = close + 1 end
      until not doubled
      i = close + 1
    else
      stub.expect(c ~= ";" and sql:sub(i, i + 1) ~= "--" and sql:sub(i, i + 1) ~= "/*", "%s outside quotes in SQL: %s",
        c == ";" and ";" or sql:sub(i, i + 1), sql)
      i = i + 1
    end
  end
end

stub.answer = function(sql)
  if sql:find("from pg_class c join pg_namespace", 1, true) then return copy(TABLES) end
  if sql:find("from pg_proc p", 1, true) then return copy(FUNCTIONS) end
  if sql:find("with recursive", 1, true) then return copy(FKS) end
  check_sql(sql)
end

return { TABLES = TABLES, FUNCTIONS = FUNCTIONS }
