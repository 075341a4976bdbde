-- strata.rest.grammar (PostgREST's query-string grammar parsed into plain
-- tables) and strata.rest.sql's builder where it needs no database: pure
-- Lua, no server.
local grammar = require("strata.rest.grammar")
local sqlmod = require("strata.rest.sql")

local function field(name, ...)
  local path = {}
  for i, step in ipairs({ ... }) do path[i] = { op = step[1], key = step[2] } end
  return { name = name, path = path }
end

-- grammar.filter(...) that must fail: returns its message.
local function filter_error(f, expr)
  local node, err = grammar.filter(f, expr)
  assert.is_nil(node, ("expected %s=%s to be refused"):format(f, expr))
  assert.is_string(err)
  return err
end

describe("strata.rest.grammar", function()
  describe("filter", function()
    it("parses every comparison operator", function()
      for _, op in ipairs({ "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike" }) do
        local node = assert(grammar.filter("qty", op .. ".5"))
        assert.same({ field = field("qty"), op = op, negate = false, value = "5" }, node)
      end
    end)

    it("maps each operator to its SQL meaning", function()
      assert.same({ eq = "=", neq = "<>", gt = ">", gte = ">=", lt = "<", lte = "<=", like = "like",
        ilike = "ilike", ["in"] = "in", is = "is", fts = "fts", plfts = "fts", phfts = "fts", wfts = "fts",
        cs = "@>", cd = "<@", match = "~", imatch = "~*", isdistinct = "is distinct from", ov = "&&", sl = "<<",
        sr = ">>", nxr = "&<", nxl = "&>", adj = "-|-" }, grammar.OPS)
    end)

    it("parses match, imatch, isdistinct, ov and the range operators, unquoting their values", function()
      for _, op in ipairs({ "match", "imatch", "isdistinct", "ov", "sl", "sr", "nxr", "nxl", "adj" }) do
        local node = assert(grammar.filter("span", op .. ".[1,5)"))
        assert.same({ field = field("span"), op = op, negate = false, value = "[1,5)" }, node)
        assert.equal("[1,5)", grammar.filter("span", op .. '."[1,5)"').value)
        assert.is_true(grammar.filter("span", "not." .. op .. ".x").negate)
      end
      assert.equal("^a.*b$", grammar.filter("name", "match.^a.*b$").value)
      assert.equal("{a,b}", grammar.filter("tags", "ov.{a,b}").value)
    end)

    it("keeps everything after the first dot of the value, dots included", function()
      assert.equal("a.b.c", grammar.filter("name", "eq.a.b.c").value)
      assert.equal("", grammar.filter("name", "eq.").value)
      assert.equal("3.25", grammar.filter("price", "gte.3.25").value)
    end)

    it("keeps like patterns as written (the builder turns * into %)", function()
      assert.equal("*an*", grammar.filter("name", "like.*an*").value)
      assert.equal("%AN%", grammar.filter("name", "ilike.%AN%").value)
    end)

    it("parses in.(...) lists, quoted members holding commas, parentheses, dots and quotes", function()
      assert.same({ "1", "2", "3" }, grammar.filter("id", "in.(1,2,3)").values)
      assert.same({ "a,b", "c(d)", "e.f", 'g"h', "i" },
        grammar.filter("name", [[in.("a,b","c(d)","e.f","g\"h",i)]]).values)
      assert.same({}, grammar.filter("id", "in.()").values)
      assert.same({ "" }, grammar.filter("name", [[in.("")]]).values)
    end)

    it("keeps unicode values intact", function()
      assert.equal("héllo wörld ✓", grammar.filter("name", "eq.héllo wörld ✓").value)
      assert.same({ "日本", "naïve, too" }, grammar.filter("name", [[in.(日本,"naïve, too")]]).values)
      assert.equal("ünïcödé", grammar.filter("name", [[eq."ünïcödé"]]).value)
    end)

    it("unquotes a double-quoted value and its backslash escapes", function()
      assert.equal("a,b", grammar.filter("name", [[eq."a,b"]]).value)
      assert.equal('say "hi"', grammar.filter("name", [[eq."say \"hi\""]]).value)
      assert.equal([[back\slash]], grammar.filter("name", [[eq."back\\slash"]]).value)
      assert.equal("(x).y", grammar.filter("name", [[eq."(x).y"]]).value)
    end)

    it("parses is. with null, true, false and unknown, in any case", function()
      for _, v in ipairs({ "null", "true", "false", "unknown" }) do
        assert.equal(v, grammar.filter("flag", "is." .. v).value)
      end
      assert.equal("null", grammar.filter("flag", "is.NULL").value)
      assert.equal("true", grammar.filter("flag", "is.True").value)
    end)

    it("parses the four full-text operators, with and without a language", function()
      for _, op in ipairs({ "fts", "plfts", "phfts", "wfts" }) do
        local node = assert(grammar.filter("body", op .. ".cat & dog"))
        assert.equal(op, node.op)
        assert.equal("cat & dog", node.value)
        assert.is_nil(node.field.lang)
        node = assert(grammar.filter("body", op .. "(english).the cats"))
        assert.equal(op, node.op)
        assert.equal("the cats", node.value)
        assert.equal("english", node.field.lang)
      end
    end)

    it("passes cs. and cd. literals through untouched (array and JSON)", function()
      assert.equal("{a,b}", grammar.filter("tags", "cs.{a,b}").value)
      assert.equal('{"a":1}', grammar.filter("meta", 'cs.{"a":1}').value)
      assert.equal('{"x y","z"}', grammar.filter("tags", 'cd.{"x y","z"}').value)
      assert.equal("cs", grammar.filter("tags", "cs.{a}").op)
      assert.equal("cd", grammar.filter("tags", "cd.{a}").op)
    end)

    it("negates with the not. prefix, on every kind of operator", function()
      local node = grammar.filter("qty", "not.eq.5")
      assert.same({ field = field("qty"), op = "eq", negate = true, value = "5" }, node)
      assert.is_true(grammar.filter("qty", "not.is.null").negate)
      assert.same({ "1", "2" }, grammar.filter("qty", "not.in.(1,2)").values)
      assert.is_true(grammar.filter("qty", "not.in.(1,2)").negate)
      assert.is_true(grammar.filter("body", "not.fts(english).cat").negate)
      assert.is_true(grammar.filter("tags", "not.cs.{a}").negate)
      assert.is_false(grammar.filter("qty", "eq.not").negate)
      assert.equal("not", grammar.filter("qty", "eq.not").value)
    end)

    it("filters on JSON paths", function()
      local node = grammar.filter("meta->size->>w", "eq.2")
      assert.same(field("meta", { "->", "size" }, { "->>", "w" }), node.field)
      assert.same(field("data", { "->", "0" }), grammar.filter("data->0", "is.null").field)
    end)

    it("refuses an unknown operator, naming the filter", function()
      local err = filter_error("qty", "xx.5")
      assert.matches("unknown operator", err)
      assert.matches("qty=xx.5", err, 1, true)
      assert.matches("qty=5", filter_error("qty", "5"), 1, true)
      assert.matches("qty=not.5", filter_error("qty", "not.5"), 1, true)
      assert.matches("qty=not.not.eq.5", filter_error("qty", "not.not.eq.5"), 1, true)
      assert.matches("unknown operator", filter_error("body", "fts(english)cat"))
      assert.matches("unknown operator", filter_error("body", "eq(english).cat"))
    end)

    it("refuses a bad in. list, naming the value", function()
      assert.matches("in. expects a list in parentheses: '1,2'", filter_error("id", "in.1,2"), 1, true)
      assert.matches("(1,2", filter_error("id", "in.(1,2"), 1, true)
      assert.matches("unterminated double quote", filter_error("id", [[in.("a,b)]]))
      assert.matches("unbalanced parentheses", filter_error("id", "in.((a)"))
    end)

    it("refuses is. with anything but null/true/false/unknown, naming the value", function()
      assert.matches("not 'maybe'", filter_error("flag", "is.maybe"), 1, true)
      assert.matches("not ''", filter_error("flag", "is."), 1, true)
    end)

    it("refuses a column it cannot parse, naming it", function()
      assert.matches("cannot parse the column 'meta->'", filter_error("meta->", "eq.1"), 1, true)
      assert.matches("cannot parse the column '->a'", filter_error("->a", "eq.1"), 1, true)
    end)
  end)

  describe("logic trees (or= / and=)", function()
    it("parses a flat or and a flat and", function()
      local node = assert(grammar.logic("or", "(qty.gt.5,qty.is.null)"))
      assert.equal("or", node.logic)
      assert.is_falsy(node.negate)
      assert.equal(2, #node.children)
      assert.same({ field = field("qty"), op = "gt", negate = false, value = "5" }, node.children[1])
      assert.same({ field = field("qty"), op = "is", negate = false, value = "null" }, node.children[2])
      node = assert(grammar.logic("and", "(a.eq.1,b.neq.2,c.like.*x*)"))
      assert.equal("and", node.logic)
      assert.equal(3, #node.children)
    end)

    it("nests or( and and( at any depth, with not. on groups and on filters", function()
      local node = assert(grammar.logic("and", "(qty.gte.3,or(name.eq.apple,not.and(a.eq.1,or(b.eq.2,c.not.is.null))))"))
      assert.equal(2, #node.children)
      local inner_or = node.children[2]
      assert.equal("or", inner_or.logic)
      assert.is_falsy(inner_or.negate)
      assert.same({ field = field("name"), op = "eq", negate = false, value = "apple" }, inner_or.children[1])
      local not_and = inner_or.children[2]
      assert.equal("and", not_and.logic)
      assert.is_true(not_and.negate)
      local deepest = not_and.children[2]
      assert.equal("or", deepest.logic)
      assert.same({ field = field("c"), op = "is", negate = true, value = "null" }, deepest.children[2])
    end)

    it("is negated as a whole with negate = true (not.or=)", function()
      local node = assert(grammar.logic("or", "(a.eq.1,b.eq.2)", true))
      assert.is_true(node.negate)
    end)

    it("keeps quoted values with commas, parentheses and dots inside groups", function()
      local node = assert(grammar.logic("or", [[(name.eq."carrot, \"orange\" (v.)",name.in.("a,b",c),name.eq.x.y)]]))
      assert.equal('carrot, "orange" (v.)', node.children[1].value)
      assert.same({ "a,b", "c" }, node.children[2].values)
      assert.equal("x.y", node.children[3].value)
    end)

    it("takes the new operators inside groups, negated too; a range quoted to carry its comma", function()
      local node = assert(grammar.logic("or", [[(span.adj."[1,5)",tags.not.ov.{a,b},name.imatch.^x,qty.isdistinct.3)]]))
      assert.same({ field = field("span"), op = "adj", negate = false, value = "[1,5)" }, node.children[1])
      assert.same({ field = field("tags"), op = "ov", negate = true, value = "{a,b}" }, node.children[2])
      assert.equal("imatch", node.children[3].op)
      assert.equal("isdistinct", node.children[4].op)
      local _, err = grammar.logic("or", "(span.sl.[1,5),id.eq.1)")
      assert.matches("unbalanced parentheses", err, 1, true)
    end)

    it("takes JSON paths and full-text languages inside groups", function()
      local node = assert(grammar.logic("or", "(meta->>color.eq.red,body.fts(english).cats)"))
      assert.same(field("meta", { "->>", "color" }), node.children[1].field)
      assert.equal("english", node.children[2].field.lang)
    end)

    it("refuses what it cannot parse, naming the part", function()
      local _, err = grammar.logic("or", "qty.gt.5")
      assert.matches("or= expects a list in parentheses", err, 1, true)
      _, err = grammar.logic("or", "(qty.gt.5")
      assert.matches("or= expects a list in parentheses", err, 1, true)
      _, err = grammar.logic("and", "(qty)")
      assert.matches("and: cannot parse 'qty'", err, 1, true)
      _, err = grammar.logic("or", "(qty.zz.5,b.eq.1)")
      assert.matches("qty=zz.5", err, 1, true)
      _, err = grammar.logic("or", "(a.eq.1,and(b.zz.2))")
      assert.matches("b=zz.2", err, 1, true)
      _, err = grammar.logic("or", [[(a.eq."open)]])
      assert.matches("unterminated double quote", err)
      _, err = grammar.logic("or", "(a.eq.1),(b.eq.2)")
      assert.matches("unbalanced parentheses", err)
    end)
  end)

  describe("select", function()
    it("reads nothing, empty and * as every column", function()
      assert.same({ { star = true } }, grammar.select(nil))
      assert.same({ { star = true } }, grammar.select(""))
      assert.same({ { star = true } }, grammar.select("*"))
    end)

    it("parses columns, aliases, JSON paths, casts and * together", function()
      local items = assert(grammar.select("id,n:name,meta->color,meta->size->>w,c:meta->>color,qty::text,q:qty::int,*"))
      assert.equal(8, #items)
      assert.same({ name = "id", path = {} }, items[1])
      assert.same({ name = "name", path = {}, alias = "n" }, items[2])
      assert.same({ name = "meta", path = { { op = "->", key = "color" } } }, items[3])
      assert.same({ name = "meta", path = { { op = "->", key = "size" }, { op = "->>", key = "w" } } }, items[4])
      assert.same({ name = "meta", path = { { op = "->>", key = "color" } }, alias = "c" }, items[5])
      assert.same({ name = "qty", path = {}, cast = "text" }, items[6])
      assert.same({ name = "qty", path = {}, alias = "q", cast = "int" }, items[7])
      assert.same({ star = true }, items[8])
    end)

    it("tolerates spaces around items", function()
      local items = assert(grammar.select(" id , name "))
      assert.same({ { name = "id", path = {} }, { name = "name", path = {} } }, items)
    end)

    it("parses embedded resources: alias, hint, !inner / !left, nested, empty", function()
      local items = assert(grammar.select("id,Message_v2(*),c:Chat!inner(title),o:people!owner_fkey!left(n:name)"))
      assert.same({ name = "id", path = {} }, items[1])
      assert.same({ embed = true, name = "Message_v2", select = { { star = true } } }, items[2])
      assert.same({ embed = true, name = "Chat", alias = "c", inner = true, select = { { name = "title", path = {} } } },
        items[3])
      assert.same({ embed = true, name = "people", alias = "o", hint = "owner_fkey", inner = false,
        select = { { name = "name", path = {}, alias = "n" } } }, items[4])
      items = assert(grammar.select("a(b!col(c( d ,e:f->>g)),h()),i!inner()"))
      assert.same({ embed = true, name = "a", select = {
        { embed = true, name = "b", hint = "col", select = {
          { embed = true, name = "c", select = { { name = "d", path = {} },
            { name = "f", alias = "e", path = { { op = "->>", key = "g" } } } } } } },
        { embed = true, name = "h", select = {} } } }, items[1])
      assert.same({ embed = true, name = "i", inner = true, select = {} }, items[2])
    end)

    it("parses spreads, count() and orders on an embed's column", function()
      local items = assert(grammar.select("id,...Chat!inner(title),m:Message_v2(count),v:Vote_v2(n:count())"))
      assert.same({ embed = true, spread = true, name = "Chat", inner = true, select = { { name = "title", path = {} } } },
        items[2])
      assert.same({ { name = "count", path = {} } }, items[3].select)
      assert.same({ { name = "count", path = {}, count = true, alias = "n" } }, items[4].select)
      assert.same({ { name = "count", path = {}, count = true } }, assert(grammar.select("count()")))
      local list = assert(grammar.order("chat(title).desc.nullslast,id"))
      assert.same({ field = { name = "title", path = {} }, relation = "chat", dir = "desc", nulls = "nullslast" }, list[1])
      assert.same({ field = { name = "id", path = {} } }, list[2])
    end)

    it("refuses bad embeds, unknown casts and unparsable items, naming them", function()
      local items, err = grammar.select("id,other(*")
      assert.is_nil(items)
      assert.matches("select: unbalanced parentheses", err, 1, true)
      items, err = grammar.select("id,other!a!b(*)")
      assert.matches("cannot parse the modifiers '!a!b' of 'other!a!b(*)'", err, 1, true)
      items, err = grammar.select("other!!inner(*)")
      assert.matches("'other!!inner(*)'", err, 1, true)
      items, err = grammar.select("a:...other(*)")
      assert.matches("a spread embedding takes no alias (a:...other(*))", err, 1, true)
      items, err = grammar.select("a b(*)")
      assert.matches("cannot parse the embedded resource 'a b(*)'", err, 1, true)
      items, err = grammar.select("other(id)x")
      assert.matches("cannot parse the embedded resource 'other(id)x'", err, 1, true)
      items, err = grammar.select("a(b(qty::money))")
      assert.is_nil(items)
      assert.matches("cannot cast to money", err, 1, true)
      items, err = grammar.select("qty::money")
      assert.is_nil(items)
      assert.matches("cannot cast to money", err, 1, true)
      items, err = grammar.select("id,meta->")
      assert.is_nil(items)
      assert.matches("cannot parse 'meta->'", err, 1, true)
      items, err = grammar.select("id,(")
      assert.is_nil(items)
      assert.matches("select: unbalanced parentheses", err, 1, true)
    end)
  end)

  describe("order", function()
    it("parses columns with direction and nulls modifiers in any order", function()
      local list = assert(grammar.order("qty.desc.nullslast,name,created_at.asc,id.nullsfirst.desc,meta->>w.desc"))
      assert.same({
        { field = field("qty"), dir = "desc", nulls = "nullslast" },
        { field = field("name") },
        { field = field("created_at"), dir = "asc" },
        { field = field("id"), dir = "desc", nulls = "nullsfirst" },
        { field = field("meta", { "->>", "w" }), dir = "desc" },
      }, list)
    end)

    it("refuses unknown modifiers and empty columns, naming the term", function()
      local list, err = grammar.order("id.sideways")
      assert.is_nil(list)
      assert.matches("unknown modifier 'sideways' in 'id.sideways'", err, 1, true)
      list, err = grammar.order("name,id.desc.nullsmiddle")
      assert.is_nil(list)
      assert.matches("'nullsmiddle' in 'id.desc.nullsmiddle'", err, 1, true)
      list, err = grammar.order(".desc")
      assert.is_nil(list)
      assert.matches("order: cannot parse '.desc'", err, 1, true)
      list, err = grammar.order("id..desc")
      assert.is_nil(list)
      assert.matches("unknown modifier '' in 'id..desc'", err, 1, true)
    end)
  end)

  describe("columns (columns= and on_conflict=)", function()
    it("reads plain and double-quoted names, as postgrest-js sends them", function()
      assert.same({ "name", "qty" }, grammar.columns("name,qty"))
      assert.same({ "name", "qty" }, grammar.columns('"name","qty"'))
      assert.same({ "a,b", "c" }, grammar.columns('"a,b", c'))
    end)

    it("refuses empty names and open quotes", function()
      local cols, err = grammar.columns("a,,b")
      assert.is_nil(cols)
      assert.matches("empty column name", err)
      cols, err = grammar.columns('"a')
      assert.is_nil(cols)
      assert.matches("unterminated double quote", err)
    end)
  end)
end)

describe("strata.rest.sql builder", function()
  local function fake_table()
    local list = {
      { name = "id", type = "integer" }, { name = "name", type = "text" }, { name = "qty", type = "integer" },
      { name = "tags", type = "text[]" }, { name = "meta", type = "jsonb" }, { name = "body", type = "text" },
    }
    local cols = {}
    for _, c in ipairs(list) do cols[c.name] = c end
    return { schema = "public", name = "items", columns = cols, column_list = list, pk = { "id" } }
  end

  local function cond(filter_key, expr)
    local b = sqlmod.builder(fake_table())
    local node = assert(grammar.filter(filter_key, expr))
    return b:condition(node), b.params
  end

  -- Asserts that `error_fn` raises the REST error table with this status and code.
  local function raises(status, code, error_fn)
    local ok, e = pcall(error_fn)
    assert.is_false(ok, "expected an error")
    assert.is_table(e, tostring(e))
    assert.is_true(e.rest_error)
    assert.equal(status, e.status)
    assert.equal(code, e.code)
    return e
  end

  it("quotes identifiers, doubling embedded quotes", function()
    assert.equal('"name"', sqlmod.qi("name"))
    assert.equal('"we""ird"', sqlmod.qi('we"ird'))
    assert.equal('"public"."items"', sqlmod.qualified(fake_table()))
  end)

  it("turns every comparison into a parameter, never inlining the value", function()
    for op, sym in pairs({ eq = "=", neq = "<>", gt = ">", gte = ">=", lt = "<", lte = "<=" }) do
      local sql, params = cond("qty", op .. ".5")
      assert.equal('"qty" ' .. sym .. " $1", sql)
      assert.same({ "5" }, params)
    end
  end)

  it("keeps a value holding quotes, semicolons and SQL only in the parameters", function()
    local evil = [[x' OR '1'='1"; drop table items; --]]
    local sql, params = cond("name", "eq." .. evil)
    assert.equal('"name" = $1', sql)
    assert.same({ evil }, params)
    assert.is_nil(sql:find("drop", 1, true))
    sql, params = cond("name", [[in.("it's","a""b",plain)]])
    assert.equal('"name" = ANY($1)', sql)
    assert.is_nil(sql:find("it's", 1, true))
    assert.equal(1, #params)
  end)

  it("builds like/ilike on text with * turned into %", function()
    local sql, params = cond("name", "like.*an*")
    assert.equal('"name"::text like $1', sql)
    assert.same({ "%an%" }, params)
    sql, params = cond("name", "ilike.A*")
    assert.equal('"name"::text ilike $1', sql)
    assert.same({ "A%" }, params)
  end)

  it("builds in. as = ANY of one array parameter, escaping members", function()
    local sql, params = cond("name", [[in.("a,b",c,"d\"e")]])
    assert.equal('"name" = ANY($1)', sql)
    assert.same({ [[{"a,b","c","d\"e"}]] }, params)
    sql = cond("meta->>color", "in.(red,blue)")
    assert.equal('"meta"->>$1::text = ANY($2::text[])', sql)
  end)

  it("builds is. without parameters", function()
    assert.equal('"qty" IS NULL', (cond("qty", "is.null")))
    assert.equal('"qty" IS TRUE', (cond("qty", "is.true")))
    assert.equal('"qty" IS FALSE', (cond("qty", "is.false")))
    assert.equal('"qty" IS UNKNOWN', (cond("qty", "is.unknown")))
  end)

  it("builds the full-text functions, the language as a regconfig parameter", function()
    local sql, params = cond("body", "fts.cat")
    assert.equal('"body" @@ to_tsquery($1)', sql)
    assert.same({ "cat" }, params)
    assert.equal('"body" @@ plainto_tsquery($1)', (cond("body", "plfts.cat")))
    assert.equal('"body" @@ phraseto_tsquery($1)', (cond("body", "phfts.cat")))
    sql, params = cond("body", "wfts(english).cat or dog")
    assert.equal('"body" @@ websearch_to_tsquery($1::regconfig, $2)', sql)
    assert.same({ "english", "cat or dog" }, params)
  end)

  it("builds cs./cd. as @> / <@ with the literal as a parameter", function()
    local sql, params = cond("tags", "cs.{a,b}")
    assert.equal('"tags" @> $1', sql)
    assert.same({ "{a,b}" }, params)
    sql, params = cond("meta", 'cd.{"a":1}')
    assert.equal('"meta" <@ $1', sql)
    assert.same({ '{"a":1}' }, params)
  end)

  it("builds match/imatch as regular expressions on text, the pattern as a parameter", function()
    local sql, params = cond("name", "match.^a.*b$")
    assert.equal('"name"::text ~ $1', sql)
    assert.same({ "^a.*b$" }, params)
    assert.equal('"name"::text ~* $1', (cond("name", "imatch.^A")))
  end)

  it("builds isdistinct, ov and the range operators with the value as a parameter", function()
    for op, sym in pairs({ isdistinct = "IS DISTINCT FROM", ov = "&&", sl = "<<", sr = ">>", nxr = "&<", nxl = "&>",
      adj = "-|-" }) do
      local sql, params = cond("tags", op .. ".[1,5)")
      assert.equal('"tags" ' .. sym .. " $1", sql)
      assert.same({ "[1,5)" }, params)
    end
    assert.equal('NOT "tags" && $1', (cond("tags", "not.ov.{a,b}")))
    assert.equal('NOT "qty" IS DISTINCT FROM $1', (cond("qty", "not.isdistinct.3")))
  end)

  it("negates with NOT", function()
    assert.equal('NOT "qty" = $1', (cond("qty", "not.eq.1")))
    assert.equal('NOT "qty" IS NULL', (cond("qty", "not.is.null")))
  end)

  it("puts JSON path keys in parameters too (int keys as ::int)", function()
    local sql, params = cond("meta->size->>w", "eq.2")
    assert.equal('"meta"->$1::text->>$2::text = $3', sql)
    assert.same({ "size", "w", "2" }, params)
    sql, params = cond("meta->0", "eq.1")
    assert.equal('"meta"->$1::int = $2', sql)
    assert.same({ "0", "1" }, params)
  end)

  it("builds nested logic trees with numbered parameters in order", function()
    local b = sqlmod.builder(fake_table())
    local node = assert(grammar.logic("or", "(qty.gt.5,and(name.eq.x,not.or(qty.is.null,name.like.*y)))"))
    assert.equal('("qty" > $1 OR ("name" = $2 AND NOT ("qty" IS NULL OR "name"::text like $3)))', b:condition(node))
    assert.same({ "5", "x", "%y" }, b.params)
    node = assert(grammar.logic("and", "(qty.gt.1)", true))
    assert.equal('NOT ("qty" > $4)', b:condition(node))
  end)

  it("prefixes columns with the alias it is given", function()
    local b = sqlmod.builder(fake_table())
    assert.equal('r."qty" = $1', b:condition(assert(grammar.filter("qty", "eq.1")), "r."))
  end)

  it("builds select lists: *, aliases, JSON paths named by their last key, casts", function()
    local b = sqlmod.builder(fake_table())
    assert.equal('"id", "name", "qty", "tags", "meta", "body"', b:select_list(assert(grammar.select("*"))))
    b = sqlmod.builder(fake_table())
    assert.equal('"name" AS "n", "meta"->>$1::text AS "color", "qty"::text AS "qty", "meta"->$2::text AS "m"',
      b:select_list(assert(grammar.select("n:name,meta->>color,qty::text,m:meta->x"))))
    assert.same({ "color", "x" }, b.params)
  end)

  it("builds ORDER BY terms with direction and nulls", function()
    local b = sqlmod.builder(fake_table())
    assert.equal('"qty" DESC NULLS LAST, "name" ASC, "id" ASC NULLS FIRST',
      b:order_by(assert(grammar.order("qty.desc.nullslast,name,id.asc.nullsfirst"))))
  end)

  it("raises the 42703 error table for an unknown column wherever it appears", function()
    local b = sqlmod.builder(fake_table())
    local e = raises(400, "42703", function() b:condition(assert(grammar.filter("nope", "eq.1"))) end)
    assert.equal("column items.nope does not exist", e.message)
    raises(400, "42703", function() b:select_list(assert(grammar.select("id,nope"))) end)
    raises(400, "42703", function() b:order_by(assert(grammar.order("nope.desc"))) end)
    raises(400, "42703", function() b:condition(assert(grammar.logic("or", "(id.eq.1,nope.eq.2)"))) end)
    raises(400, "42703", function() b:condition(assert(grammar.filter("nope->>a", "eq.1"))) end)
  end)

  it("builds an array literal that PostgreSQL reads back as the same strings", function()
    assert.equal([[{"a","b,c","d\"e","f\\g",""}]], sqlmod.array_literal({ "a", "b,c", 'd"e', [[f\g]], "" }))
    assert.equal("{}", sqlmod.array_literal({}))
  end)

  it("ANDs the non-empty conditions into a WHERE clause", function()
    assert.equal("", sqlmod.where({}))
    assert.equal(" WHERE a AND b", sqlmod.where({ "a", "", "b" }))
  end)
end)

describe("strata.rest.embed planning", function()
  -- strata.log is the server's C module; the policy layer only logs through it.
  package.preload["strata.log"] = package.preload["strata.log"] or function()
    return setmetatable({}, { __index = function() return function() end end })
  end
  local embed = require("strata.rest.embed")
  local SERVICE = { role = "service_role" }

  local function tbl(name, cols)
    local list, by = {}, {}
    for i, c in ipairs(cols) do list[i] = { name = c, type = "integer" }; by[c] = list[i] end
    return { schema = "public", name = name, columns = by, column_list = list, pk = { "id" }, fks = {}, referenced_by = {} }
  end

  local function fk(cat, name, from, cols, to, ref_cols)
    local k = { name = name, schema = "public", table_name = from, ref_schema = "public", ref_table = to,
      columns = cols, ref_columns = ref_cols, is_unique = false }
    table.insert(cat.tables[from].fks, k)
    table.insert(cat.tables[to].referenced_by, k)
  end

  -- people <- tasks (owner, reviewer; parent: itself) <- notes
  local function catalog()
    local cat = { tables = {
      xp_people = tbl("xp_people", { "id", "name" }),
      xp_tasks = tbl("xp_tasks", { "id", "title", "owner_id", "reviewer_id", "parent_id" }),
      xp_notes = tbl("xp_notes", { "id", "task_id", "body" }),
    } }
    fk(cat, "xp_tasks_owner_fkey", "xp_tasks", { "owner_id" }, "xp_people", { "id" })
    fk(cat, "xp_tasks_reviewer_fkey", "xp_tasks", { "reviewer_id" }, "xp_people", { "id" })
    fk(cat, "xp_tasks_parent_fkey", "xp_tasks", { "parent_id" }, "xp_tasks", { "id" })
    fk(cat, "xp_notes_task_fkey", "xp_notes", { "task_id" }, "xp_tasks", { "id" })
    return cat
  end

  -- The select list and !inner conditions for a read of `from`.
  local function plan(from, select, query, ctx)
    local cat = catalog()
    local b = sqlmod.builder(cat.tables[from])
    local items = assert(grammar.select(select))
    local _, nested = embed.split(query or {})
    local inner = embed.plan(b, ctx or SERVICE, cat, cat.tables[from], items, nested)
    return b:select_list(items), inner, b.params
  end

  local function rest_error(fn)
    local ok, e = pcall(fn)
    assert.is_false(ok)
    assert.is_table(e, tostring(e))
    assert.is_true(e.rest_error)
    return e
  end

  it("splits embedded resources' parameters from the top-level ones", function()
    local top, nested = embed.split({ select = "*", id = "eq.1", ["not.or"] = "(a.eq.1)", ["m.role"] = "eq.x",
      ["m.not.and"] = "(a.eq.1)", ["m.v.order"] = "id", ["m.limit"] = { "1", "2" } })
    assert.same({ select = "*", id = "eq.1", ["not.or"] = "(a.eq.1)" }, top)
    assert.same({
      { path = { "m" }, key = "limit", raw = "m.limit", values = { "1", "2" } },
      { path = { "m" }, key = "not.and", raw = "m.not.and", values = { "(a.eq.1)" } },
      { path = { "m" }, key = "role", raw = "m.role", values = { "eq.x" } },
      { path = { "m", "v" }, key = "order", raw = "m.v.order", values = { "id" } },
    }, nested)
  end)

  it("builds one-to-many as coalesce(json_agg) over a correlated subquery", function()
    local sel, inner, params = plan("xp_tasks", "id,xp_notes(body)", { ["xp_notes.body"] = "eq.hi",
      ["xp_notes.order"] = "id.desc", ["xp_notes.limit"] = "2" })
    assert.equal('"id" AS "id", (SELECT coalesce(json_agg(pgrst_x), \'[]\') FROM (SELECT pgrst_e1."body" AS "body" '
      .. 'FROM "public"."xp_notes" AS pgrst_e1 WHERE pgrst_e1."task_id" = "public"."xp_tasks"."id" AND TRUE '
      .. 'AND pgrst_e1."body" = $1 ORDER BY pgrst_e1."id" DESC LIMIT $2) AS pgrst_x) AS "xp_notes"', sel)
    assert.same({}, inner)
    assert.same({ "hi", 2 }, params)
  end)

  it("builds many-to-one as row_to_json, nested under its parent's alias", function()
    local sel = plan("xp_notes", "t:xp_tasks(title,owner:xp_people!owner_id(name))")
    assert.equal('(SELECT row_to_json(pgrst_x) FROM (SELECT pgrst_e1."title" AS "title", (SELECT row_to_json(pgrst_x) '
      .. 'FROM (SELECT pgrst_e2."name" AS "name" FROM "public"."xp_people" AS pgrst_e2 WHERE pgrst_e2."id" = '
      .. 'pgrst_e1."owner_id" AND TRUE LIMIT 1) AS pgrst_x) AS "owner" FROM "public"."xp_tasks" AS pgrst_e1 WHERE '
      .. 'pgrst_e1."id" = "public"."xp_notes"."task_id" AND TRUE LIMIT 1) AS pgrst_x) AS "t"', sel)
  end)

  it("turns !inner into an EXISTS on the parent, and an empty embed into no column", function()
    local sel, inner, params = plan("xp_tasks", "id,xp_notes!inner()", { ["xp_notes.body"] = "eq.x" })
    assert.equal('"id" AS "id"', sel)
    assert.same({ 'EXISTS (SELECT 1 FROM "public"."xp_notes" AS pgrst_e1 WHERE pgrst_e1."task_id" = '
      .. '"public"."xp_tasks"."id" AND TRUE AND pgrst_e1."body" = $1)' }, inner)
    assert.same({ "x" }, params)
  end)

  it("ANDs the embedded table's policy: none at all reads as FALSE (no rows), as RLS would", function()
    local sel = plan("xp_tasks", "xp_notes(id)", nil, { role = "anon" })
    assert.matches('AND FALSE', sel, 1, true)
  end)

  it("chooses the relationship by constraint or column hint; self-references by table or column name", function()
    assert.matches('pgrst_e1."id" = "public"."xp_tasks"."reviewer_id"',
      plan("xp_tasks", "xp_people!xp_tasks_reviewer_fkey(name)"), 1, true)
    assert.matches('pgrst_e1."id" = "public"."xp_tasks"."owner_id"', plan("xp_tasks", "xp_people!owner_id(name)"), 1, true)
    assert.matches('pgrst_e1."parent_id" = "public"."xp_tasks"."id"', plan("xp_tasks", "kids:xp_tasks(id)"), 1, true)
    assert.matches('pgrst_e1."id" = "public"."xp_tasks"."parent_id"', plan("xp_tasks", "parent_id(id)"), 1, true)
    assert.matches('pgrst_e1."parent_id" = "public"."xp_tasks"."id"', plan("xp_tasks", "xp_tasks!parent_id(id)"), 1, true)
  end)

  it("answers 300 PGRST201 with the candidates for an ambiguous embed", function()
    local e = rest_error(function() plan("xp_tasks", "xp_people(name)") end)
    assert.equal(300, e.status)
    assert.equal("PGRST201", e.code)
    assert.equal("Could not embed because more than one relationship was found for 'xp_tasks' and 'xp_people'", e.message)
    assert.same({ cardinality = "many-to-one", embedding = "xp_tasks with xp_people",
      relationship = "xp_tasks_owner_fkey using xp_tasks(owner_id) and xp_people(id)" }, e.details[1])
    assert.equal("Try changing 'xp_people' to one of the following: 'xp_people!xp_tasks_owner_fkey', "
      .. "'xp_people!xp_tasks_reviewer_fkey'. Find the desired relationship in the 'details' key.", e.hint)
  end)

  it("answers 400 PGRST200 for no relationship and PGRST108 for a parameter of no embed", function()
    local e = rest_error(function() plan("xp_people", "xp_notes(id)") end)
    assert.same({ 400, "PGRST200", "Could not find a relationship between 'xp_people' and 'xp_notes' in the schema cache" },
      { e.status, e.code, e.message })
    e = rest_error(function() plan("xp_tasks", "xp_people!nope(id)") end)
    assert.matches("using the hint 'nope' in the schema 'public'", e.details, 1, true)
    e = rest_error(function() plan("xp_tasks", "id,xp_notes(id)", { ["xp_nope.id"] = "eq.1" }) end)
    assert.same({ 400, "PGRST108", "'xp_nope' is not an embedded resource in this request" }, { e.status, e.code, e.message })
    e = rest_error(function() plan("xp_tasks", "id,xp_notes(id)", { ["xp_notes.id"] = "zz.1" }) end)
    assert.equal('"failed to parse filter (zz.1)" (line 1, column 1)', e.message) -- PostgREST's words
  end)

  it("refuses to join through a column the policy hides (it would leak its values)", function()
    local cat = catalog()
    local b = sqlmod.builder(cat.tables.xp_tasks)
    b.hidden, b.hidden_status = { owner_id = true }, 401
    local e = rest_error(function()
      embed.plan(b, SERVICE, cat, cat.tables.xp_tasks, assert(grammar.select("xp_people!owner_id(name)")), {})
    end)
    assert.same({ 401, "42501", "permission denied for column owner_id of table xp_tasks" }, { e.status, e.code, e.message })
  end)

  it("is refused where nothing planned it (writes answer 400)", function()
    local b = sqlmod.builder(catalog().tables.xp_tasks)
    local e = rest_error(function() b:select_list(assert(grammar.select("id,xp_notes(id)"))) end)
    assert.equal(400, e.status)
  end)
end)

-- PostgREST's words for what its parser refuses: the doctests of
-- src/PostgREST/ApiRequest/QueryParams.hs and its test suite's bodies.
describe("strata.rest.parse_error", function()
  local pe = require("strata.rest.parse_error")

  it("words a filter's operator and value as pOpExpr's errors", function()
    for _, c in ipairs({
      { "val", 1, 'unexpected "v" expecting "not" or operator (eq, gt, ...)' },
      { "noop.0", 1, 'unexpected "o" expecting "not" or operator (eq, gt, ...)' },
      { "fts().value", 5, 'unexpected ")" expecting operator (eq, gt, ...)' },
      { "eq().value", 4, 'unexpected ")" expecting operator (eq, gt, ...)' },
      { "is().value", 3, 'unexpected "(" expecting operator (eq, gt, ...)' },
      { "in().value", 3, 'unexpected "(" expecting operator (eq, gt, ...)' },
      { "in.1,2", 4, 'unexpected "1" expecting "("' },
    }) do
      local message, details = pe.filter(c[1])
      assert.equal(('"failed to parse filter (%s)" (line 1, column %d)'):format(c[1], c[2]), message)
      assert.equal(c[3], details)
    end
    for _, ok in ipairs({ "eq(all).value", "not.eq(any).x", "fts(english).cat", "in.(1,2)", "is.NULL", "is.not_null",
        "isdistinct.x", "not.adj.[1,2)", "eq." }) do
      assert.is_nil(pe.filter(ok), ok)
    end
  end)

  it("words order terms as pOrder's errors", function()
    for _, c in ipairs({
      { "id.ac", 4, 'unexpected "c" expecting "asc", "desc", "nullsfirst" or "nullslast"' },
      { "id.descc", 8, [[unexpected 'c' expecting delimiter (.), "," or end of input]] },
      { "id.nulsfist", 4, 'unexpected "n" expecting "asc", "desc", "nullsfirst" or "nullslast"' },
      { "id.nullslasttt", 13, [[unexpected 't' expecting "," or end of input]] },
      { "id.smth34", 4, 'unexpected "s" expecting "asc", "desc", "nullsfirst" or "nullslast"' },
      { "id.asc.nlsfst", 8, 'unexpected "l" expecting "nullsfirst" or "nullslast"' },
      { "id.asc.nullslasttt", 17, [[unexpected 't' expecting "," or end of input]] },
      { "id.asc.smth34", 8, 'unexpected "s" expecting "nullsfirst" or "nullslast"' },
    }) do
      local message, details = pe.order(c[1])
      assert.equal(('"failed to parse order (%s)" (line 1, column %d)'):format(c[1], c[2]), message)
      assert.equal(c[3], details)
    end
    assert.is_nil(pe.order("a.desc.nullslast,b,c->d.asc"))
  end)

  it("words logic trees as pLogicTree's errors", function()
    local message, details = pe.logic("or", "(id.in.1,2,id.eq.3)")
    assert.equal('"failed to parse logic tree ((id.in.1,2,id.eq.3))" (line 1, column 10)', message)
    assert.equal('unexpected "1" expecting "("', details)
    message, details = pe.logic("not.and", "(a.eq.1,b.nope.2)")
    assert.equal('"failed to parse logic tree ((a.eq.1,b.nope.2))" (line 1, column 18)', message)
    assert.equal('unexpected "p" expecting "not" or operator (eq, gt, ...)', details)
  end)

  it("shows text as Haskell's show does", function()
    assert.equal('"a\\"b\\\\c\\233\\&1\\n"', pe.show('a"b\\c\u{e9}1\n'))
    assert.equal([['\'']], pe.show("'", "'"))
    assert.equal('"\\255"', pe.show("\255")) -- not UTF-8: byte by byte
  end)
end)
