-- Shared code for the specs: talking to the test database through psql, and
-- small fixtures.  The test runner (scripts/test) creates a fresh database,
-- migrates it and exports its URL as STRATA_TEST_DATABASE_URL; specs never
-- touch the database of `make run`.

local M = {}

local NULL_MARK = "\\N" -- what psql prints for SQL NULL (see --pset below)

M.url = os.getenv("STRATA_TEST_DATABASE_URL")
assert(M.url and M.url ~= "", "STRATA_TEST_DATABASE_URL is not set: run the specs with `make test`")

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Parses psql's --csv output (RFC 4180: quoted fields may hold commas,
-- quotes and newlines) into an array of arrays of strings.
local function parse_csv(text)
  local records, fields, field = {}, {}, {}
  local i, n, quoted = 1, #text, false
  while i <= n do
    local c = text:sub(i, i)
    if quoted then
      if c == '"' then
        if text:sub(i + 1, i + 1) == '"' then
          field[#field + 1] = '"'; i = i + 1
        else
          quoted = false
        end
      else
        field[#field + 1] = c
      end
    elseif c == '"' then
      quoted = true
    elseif c == "," then
      fields[#fields + 1] = table.concat(field); field = {}
    elseif c == "\n" then
      fields[#fields + 1] = table.concat(field); field = {}
      records[#records + 1] = fields; fields = {}
    else
      field[#field + 1] = c
    end
    i = i + 1
  end
  if #field > 0 or #fields > 0 then
    fields[#fields + 1] = table.concat(field)
    records[#records + 1] = fields
  end
  return records
end

-- Runs `sql` (one or more statements) in one transaction with psql.
-- Returns stdout, or nil and an error table {code = SQLSTATE, message = ...}.
local function run(sql, csv, setup)
  local sqlfile, errfile = os.tmpname(), os.tmpname()
  local f = assert(io.open(sqlfile, "wb"))
  if setup then
    -- Setup output is discarded so that only `sql`'s rows are parsed.
    f:write("\\o /dev/null\n", setup, ";\n\\o\n")
  end
  f:write(sql)
  f:close()
  local cmd = table.concat({
    "psql -X -q -1 -v ON_ERROR_STOP=1 -v VERBOSITY=verbose",
    csv and "--csv --pset=null=" .. shell_quote(NULL_MARK) or "",
    "-d", shell_quote(M.url), "-f", shell_quote(sqlfile),
    "2>", shell_quote(errfile),
  }, " ")
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  local err = read_all(errfile)
  os.remove(sqlfile)
  os.remove(errfile)
  if ok then return out end
  local code, message = err:match("ERROR:%s+(%w%w%w%w%w):%s*([^\n]*)")
  return nil, { code = code, message = message or err, raw = err }
end

--- Runs statements that return no rows; `true` or `nil, err`.
function M.exec(sql)
  local out, err = run(sql, false)
  if not out then return nil, err end
  return true
end

--- Runs `setup` (optional, its output discarded) then `sql`, one statement
-- returning rows, in one transaction.  Returns an array of rows keyed by
-- column name (strings; NULL is nil), or nil, err.
function M.query(sql, setup)
  local out, err = run(sql, true, setup)
  if not out then return nil, err end
  local records = parse_csv(out)
  local header = table.remove(records, 1) or {}
  local rows = {}
  for r, rec in ipairs(records) do
    local row = {}
    for c, name in ipairs(header) do
      if rec[c] ~= NULL_MARK then row[name] = rec[c] end
    end
    rows[r] = row
  end
  return rows
end

--- The first column of the first row (string or nil); raises on SQL error.
function M.scalar(sql, setup)
  local rows, err = M.query(sql, setup)
  assert(rows, err and (err.code or "") .. " " .. (err.message or ""))
  local row = rows[1]
  if not row then return nil end
  local _, v = next(row)
  return v
end

--- Asserts that `sql` fails with SQLSTATE `code`; returns the error.
function M.refuses(code, sql)
  local ok, err = M.exec(sql)
  assert(not ok, "expected SQLSTATE " .. code .. " but the statement succeeded:\n" .. sql)
  assert(err.code == code, ("expected SQLSTATE %s, got %s: %s"):format(code, tostring(err.code), err.raw))
  return err
end

--- Asserts that `sql` succeeds; returns true.
function M.accepts(sql)
  local ok, err = M.exec(sql)
  assert(ok, err and ("statement refused: %s %s\n%s"):format(tostring(err.code), err.raw, sql))
  return true
end

--- A fresh random UUID (string), for fixtures that must not collide.
function M.uuid()
  local t = {}
  for i = 1, 16 do t[i] = math.random(0, 255) end
  t[7] = (t[7] & 0x0f) | 0x40
  t[9] = (t[9] & 0x3f) | 0x80
  return ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x"):format(table.unpack(t))
end

--- SQL literal for a Lua string (for fixtures written by the specs themselves).
function M.lit(s)
  if s == nil then return "NULL" end
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end

--- Inserts an auth.users row and returns its id.
function M.user(meta)
  local id = M.uuid()
  M.accepts(("insert into auth.users(id, email, raw_user_meta_data) values (%s, %s, %s)")
    :format(M.lit(id), M.lit(id .. "@example.test"), M.lit(meta or "{}")))
  return id
end

math.randomseed(os.time() ~ tonumber(tostring({}):match("0x(%x+)"), 16))

return M
