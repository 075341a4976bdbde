-- Resource embedding in select= end to end (strata.rest.embed): many-to-one
-- as an object or null, one-to-many as an array, aliases, disambiguation
-- by constraint or column, self-references, !inner, two levels deep,
-- filters / order / limit on embedded resources, PostgREST's errors, and
-- the row policies of every embedded table (the chat platform's real
-- policies, plus fixtures with a hidden column and with no policy at all).
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "embed-spec-secret-0123456789"

local EVERYONE = [[
return { select = function() return true end, hidden = { "email" } }
]]
local READABLE = [[
return { select = function() return true end }
]]
-- Signed-in callers read their own notes only.
local OWN_NOTES = [[
return { select = function(ctx) return ctx.uid and { author = ctx.uid } or false end }
]]

local FIXTURES = [[
drop table if exists public.embed_spec_secret, public.embed_spec_notes, public.embed_spec_tasks,
  public.embed_spec_profiles, public.embed_spec_people cascade;
create table public.embed_spec_people (id int primary key, name text not null, email text);
create table public.embed_spec_tasks (
  id int primary key,
  title text not null,
  owner_id int constraint embed_spec_tasks_owner_fkey references public.embed_spec_people(id),
  reviewer_id int constraint embed_spec_tasks_reviewer_fkey references public.embed_spec_people(id),
  parent_id int references public.embed_spec_tasks(id)
);
create table public.embed_spec_notes (
  id int primary key, task_id int not null references public.embed_spec_tasks(id), author uuid, body text);
create table public.embed_spec_profiles (person_id int primary key references public.embed_spec_people(id), bio text);
create table public.embed_spec_secret (id int primary key, task_id int references public.embed_spec_tasks(id), v text);
insert into public.embed_spec_people values (1, 'ann', 'ann@example.test'), (2, 'ben', 'ben@example.test');
insert into public.embed_spec_tasks values (1, 'write', 1, 2, null), (2, 'review', 2, 1, 1), (3, 'idle', null, null, 1);
insert into public.embed_spec_secret values (1, 1, 's1');
insert into public.embed_spec_profiles values (1, 'hi');
]]

local DROP = [[
drop table if exists public.embed_spec_secret, public.embed_spec_notes, public.embed_spec_tasks,
  public.embed_spec_profiles, public.embed_spec_people cascade;
]]

local lit = h.lit

local function encode(s)
  return (tostring(s):gsub("[^%w_%.~%-]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- "path?k=v&..." from { { key, value }, ... }, every part percent-encoded.
local function url(path, query)
  local out = {}
  for i, kv in ipairs(query) do out[i] = encode(kv[1]) .. "=" .. encode(kv[2]) end
  return path .. "?" .. table.concat(out, "&")
end

-- The values of `key` in rows, sorted.
local function pluck(rows, key)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r[key] end
  table.sort(out, function(a, b) return tostring(a) < tostring(b) end)
  return out
end

-- Every string anywhere in a decoded JSON document.
local function strings(doc, out)
  out = out or {}
  if type(doc) == "string" then out[doc] = true
  elseif type(doc) == "table" then
    for k, v in pairs(doc) do strings(k, out); strings(v, out) end
  end
  return out
end

describe("resource embedding #server", function()
  local server, dir, alice, bob, admin, anon, service
  local A, B, ADMIN
  local chat_a, chat_a2, chat_b, msg_a1, msg_a2, msg_b, doc_a, doc_b_in_a, doc_b

  setup(function()
    h.accepts(FIXTURES)
    dir = srv.lua_dir({})
    srv.write(dir .. "/policies/public/embed_spec_people.lua", EVERYONE)
    srv.write(dir .. "/policies/public/embed_spec_tasks.lua", READABLE)
    srv.write(dir .. "/policies/public/embed_spec_notes.lua", OWN_NOTES)
    srv.write(dir .. "/policies/public/embed_spec_profiles.lua", READABLE)
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_JWT_SECRET = SECRET, STRATA_ACCESS_LOG = "off" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 20)), server.log())
    A, B, ADMIN = h.user(), h.user(), h.user('{"role":"admin"}')
    alice = srv.rest_client(server.port, srv.token(SECRET, "--sub " .. A))
    bob = srv.rest_client(server.port, srv.token(SECRET, "--sub " .. B))
    admin = srv.rest_client(server.port, srv.token(SECRET, "--sub " .. ADMIN .. " --admin"))
    anon = srv.rest_client(server.port, nil)
    service = srv.rest_client(server.port, srv.token(SECRET, "--role service_role"))
    chat_a, chat_a2, chat_b = h.uuid(), h.uuid(), h.uuid()
    msg_a1, msg_a2, msg_b = h.uuid(), h.uuid(), h.uuid()
    doc_a, doc_b_in_a, doc_b = h.uuid(), h.uuid(), h.uuid()
    h.accepts(([[
      insert into public."Chat"(id, title, user_id) values (%s, 'A one', %s), (%s, 'A two', %s), (%s, 'B one', %s);
      insert into public."Message_v2"(id, "chatId", role, parts, "createdAt") values
        (%s, %s, 'user', '[{"text":"a1"}]', '2024-01-01'), (%s, %s, 'assistant', '[{"text":"a2"}]', '2024-01-02'),
        (%s, %s, 'user', '[{"text":"b"}]', '2024-01-01');
      insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, true), (%s, %s, false);
      insert into public."Document"(id, title, user_id, chat_id) values
        (%s, 'A doc', %s, %s), (%s, 'B doc in A chat', %s, %s), (%s, 'B doc', %s, %s);
      insert into public.embed_spec_notes values (1, 1, %s, 'a1'), (2, 1, %s, 'b1'), (3, 2, %s, 'a2');
    ]]):format(lit(chat_a), lit(A), lit(chat_a2), lit(A), lit(chat_b), lit(B),
      lit(msg_a1), lit(chat_a), lit(msg_a2), lit(chat_a), lit(msg_b), lit(chat_b),
      lit(chat_a), lit(msg_a2), lit(chat_b), lit(msg_b),
      lit(doc_a), lit(A), lit(chat_a), lit(doc_b_in_a), lit(B), lit(chat_a), lit(doc_b), lit(B), lit(chat_b),
      lit(A), lit(B), lit(A)))
  end)

  teardown(function()
    if server then
      assert.equal(0, server.stop(), server.log())
      server.cleanup()
    end
    if dir then os.execute("rm -rf " .. srv.quote(dir)) end
    h.exec(DROP)
  end)

  -- GET as `who`; asserts the status and answers the body.
  local function get(who, path, query, status)
    local code, doc = who.get(url(path, query))
    assert.equal(status or 200, code, cjson.encode(doc))
    return doc
  end

  describe("shapes", function()
    it("embeds one-to-many as an array, next to the parent's columns", function()
      local rows = get(alice, "Chat", { { "select", "id,title,Message_v2(id,role)" }, { "id", "eq." .. chat_a },
        { "Message_v2.order", "createdAt" } })
      assert.same({ { id = chat_a, title = "A one", Message_v2 = { { id = msg_a1, role = "user" },
        { id = msg_a2, role = "assistant" } } } }, rows)
    end)

    it("embeds many-to-one as an object, under an alias", function()
      local rows = get(alice, "Message_v2", { { "select", "id,chat:Chat(title,user_id)" }, { "id", "eq." .. msg_a1 } })
      assert.same({ { id = msg_a1, chat = { title = "A one", user_id = A } } }, rows)
    end)

    it("answers [] for no related rows and null for a missing to-one", function()
      local rows = get(alice, "Chat", { { "select", "id,messages:Message_v2(*)" }, { "id", "eq." .. chat_a2 } })
      assert.same({ { id = chat_a2, messages = {} } }, rows)
      rows = get(service, "embed_spec_tasks", { { "select", "id,owner:embed_spec_people!owner_id(name)" }, { "id", "eq.3" } })
      assert.same({ { id = 3, owner = cjson.null } }, rows)
    end)

    it("embeds one-to-one (the referencing columns are a unique key) as an object or null", function()
      local rows = get(alice, "embed_spec_people", { { "select", "name,embed_spec_profiles(bio)" }, { "order", "id" } })
      assert.same({ { name = "ann", embed_spec_profiles = { bio = "hi" } }, { name = "ben", embed_spec_profiles = cjson.null } },
        rows)
    end)

    it("embeds two levels deep, both directions", function()
      local rows = get(alice, "Chat", { { "select", "id,Message_v2(role,Vote_v2(isUpvoted))" }, { "id", "eq." .. chat_a },
        { "Message_v2.order", "createdAt" } })
      assert.same({ { id = chat_a, Message_v2 = { { role = "user", Vote_v2 = {} },
        { role = "assistant", Vote_v2 = { { isUpvoted = true } } } } } }, rows)
      rows = get(alice, "Vote_v2", { { "select", "isUpvoted,Message_v2(role,Chat(title))" } })
      assert.same({ { isUpvoted = true, Message_v2 = { role = "assistant", Chat = { title = "A one" } } } }, rows)
    end)

    it("embeds with * alongside and leaves an empty embed out of the answer", function()
      local rows = get(alice, "Chat", { { "select", "*,Message_v2!inner()" }, { "id", "in.(" .. chat_a .. "," .. chat_a2 .. ")" } })
      assert.equal(1, #rows)
      assert.equal(chat_a, rows[1].id)
      assert.equal("A one", rows[1].title)
      assert.is_nil(rows[1].Message_v2)
    end)
  end)

  describe("relationships", function()
    it("answers 300 PGRST201 with the candidates when two foreign keys qualify", function()
      local doc = get(service, "embed_spec_tasks", { { "select", "id,embed_spec_people(name)" } }, 300)
      assert.equal("PGRST201", doc.code)
      assert.equal("Could not embed because more than one relationship was found for 'embed_spec_tasks' and "
        .. "'embed_spec_people'", doc.message)
      assert.same({ "embed_spec_tasks_owner_fkey using embed_spec_tasks(owner_id) and embed_spec_people(id)",
        "embed_spec_tasks_reviewer_fkey using embed_spec_tasks(reviewer_id) and embed_spec_people(id)" },
        pluck(doc.details, "relationship"))
      assert.same({ "many-to-one", "many-to-one" }, pluck(doc.details, "cardinality"))
      assert.matches("'embed_spec_people!embed_spec_tasks_owner_fkey'", doc.hint, 1, true)
    end)

    it("disambiguates by constraint name or by column, on either side", function()
      local rows = get(service, "embed_spec_tasks", { { "select",
        "id,owner:embed_spec_people!embed_spec_tasks_owner_fkey(name),reviewer:embed_spec_people!reviewer_id(name)" },
        { "order", "id" } })
      assert.same({ { id = 1, owner = { name = "ann" }, reviewer = { name = "ben" } },
        { id = 2, owner = { name = "ben" }, reviewer = { name = "ann" } },
        { id = 3, owner = cjson.null, reviewer = cjson.null } }, rows)
      rows = get(service, "embed_spec_people", { { "select", "name,owned:embed_spec_tasks!owner_id(title)" }, { "order", "id" } })
      assert.same({ { name = "ann", owned = { { title = "write" } } }, { name = "ben", owned = { { title = "review" } } } }, rows)
    end)

    it("follows a self-reference: children by the table's name, the parent by the column's", function()
      local rows = get(service, "embed_spec_tasks", { { "select", "id,subtasks:embed_spec_tasks(id),parent:parent_id(title)" },
        { "id", "in.(1,2)" }, { "order", "id" }, { "subtasks.order", "id.desc" } })
      assert.same({ { id = 1, subtasks = { { id = 3 }, { id = 2 } }, parent = cjson.null },
        { id = 2, subtasks = {}, parent = { title = "write" } } }, rows)
    end)

    it("answers 400 PGRST200 when no foreign key relates the tables", function()
      local doc = get(alice, "Chat", { { "select", "id,embed_spec_people(*)" } }, 400)
      assert.equal("PGRST200", doc.code)
      assert.equal("Could not find a relationship between 'Chat' and 'embed_spec_people' in the schema cache", doc.message)
      assert.equal("Searched for a foreign key relationship between 'Chat' and 'embed_spec_people' in the schema "
        .. "'public', but no matches were found.", doc.details)
      doc = get(service, "embed_spec_tasks", { { "select", "id,embed_spec_people!nope(*)" } }, 400)
      assert.equal("PGRST200", doc.code)
      assert.matches("using the hint 'nope'", doc.details, 1, true)
    end)
  end)

  describe("parameters of embedded resources", function()
    local both = function() return { "id", "in.(" .. chat_a .. "," .. chat_a2 .. ")" } end

    it("filter the embedded rows, not the parent", function()
      local rows = get(alice, "Chat", { { "select", "id,Message_v2(role)" }, both(), { "Message_v2.role", "eq.assistant" },
        { "order", "createdAt" } })
      assert.equal(2, #rows)
      for _, r in ipairs(rows) do
        assert.same(r.id == chat_a and { { role = "assistant" } } or {}, r.Message_v2)
      end
    end)

    it("filter the parent too with !inner", function()
      local rows = get(alice, "Chat", { { "select", "id,Message_v2!inner(role)" }, both(),
        { "Message_v2.role", "eq.assistant" } })
      assert.same({ { id = chat_a, Message_v2 = { { role = "assistant" } } } }, rows)
      rows = get(alice, "Chat", { { "select", "id,Message_v2!inner(role)" }, both(), { "Message_v2.role", "eq.system" } })
      assert.same({}, rows)
    end)

    it("take or= / not. groups, by alias too", function()
      local rows = get(alice, "Chat", { { "select", "id,m:Message_v2(role)" }, { "id", "eq." .. chat_a },
        { "m.or", "(role.eq.system,role.eq.user)" } })
      assert.same({ { role = "user" } }, rows[1].m)
      rows = get(alice, "Chat", { { "select", "id,m:Message_v2(role)" }, { "id", "eq." .. chat_a },
        { "m.role", "not.eq.user" } })
      assert.same({ { role = "assistant" } }, rows[1].m)
    end)

    it("order, limit and offset a one-to-many embed", function()
      local q = { { "select", "id,Message_v2(id)" }, { "id", "eq." .. chat_a }, { "Message_v2.order", "createdAt.desc" },
        { "Message_v2.limit", "1" } }
      assert.same({ { id = msg_a2 } }, get(alice, "Chat", q)[1].Message_v2)
      q[#q + 1] = { "Message_v2.offset", "1" }
      assert.same({ { id = msg_a1 } }, get(alice, "Chat", q)[1].Message_v2)
    end)

    it("reach a nested embed by its path", function()
      local rows = get(alice, "Chat", { { "select", "id,Message_v2(role,Vote_v2!inner(isUpvoted))" }, { "id", "eq." .. chat_a },
        { "Message_v2.Vote_v2.isUpvoted", "is.false" } })
      assert.same({ { id = chat_a, Message_v2 = {} } }, rows)
    end)

    it("count the parent rows !inner keeps", function()
      local code, rows = alice.get(url("Chat", { { "select", "id,Message_v2!inner(id)" }, both() }),
        { Prefer = "count=exact" })
      assert.equal(200, code)
      assert.equal(1, #rows)
    end)

    it("answer 400 naming what is wrong", function()
      local doc = get(alice, "Chat", { { "select", "id" }, { "Message_v2.role", "eq.user" } }, 400)
      assert.equal("PGRST108", doc.code)
      assert.equal("'Message_v2' is not an embedded resource in this request", doc.message)
      doc = get(alice, "Chat", { { "select", "id,Message_v2(id)" }, { "Message_v2.limit", "-1" } }, 400)
      assert.matches("Message_v2.limit", doc.message, 1, true)
      doc = get(alice, "Chat", { { "select", "id,Message_v2(id)" }, { "Message_v2.role", "zz.user" } }, 400)
      assert.equal("PGRST100", doc.code)
      assert.matches("Message_v2.role=zz.user", doc.message, 1, true)
      doc = get(alice, "Chat", { { "select", "id,Message_v2(nope)" } }, 400)
      assert.equal("42703", doc.code)
      doc = get(alice, "Chat", { { "select", "id,Message_v2!a!b(id)" } }, 400)
      assert.equal("PGRST100", doc.code)
      assert.matches("Message_v2!a!b(id)", doc.details, 1, true)
    end)

    it("are refused on writes, which do not embed", function()
      local code, doc = service.post(url("embed_spec_people", { { "select", "id,embed_spec_tasks!owner_id(id)" } }),
        { id = 9, name = "zed" })
      assert.equal(400, code, cjson.encode(doc))
      assert.equal("0", h.scalar("select count(*) from public.embed_spec_people where id = 9"))
    end)
  end)

  describe("row policies", function()
    it("never show user A the rows of user B, at any depth", function()
      local rows = get(alice, "Chat", { { "select", "id,Message_v2(id,Vote_v2(messageId)),Document(id),Vote_v2(chatId)" } })
      local seen = strings(rows)
      assert.is_true(seen[chat_a] and seen[msg_a1] and seen[doc_a] or false)
      for _, id in ipairs({ chat_b, msg_b, doc_b, doc_b_in_a, B }) do assert.is_nil(seen[id], id) end
    end)

    it("apply the embedded table's own policy when the parent is visible", function()
      -- An admin reads every chat, but only the messages of their own chats.
      local rows = get(admin, "Chat", { { "select", "id,Message_v2(id)" }, { "id", "eq." .. chat_b } })
      assert.same({ { id = chat_b, Message_v2 = {} } }, rows)
      rows = get(admin, "Chat", { { "select", "id,Message_v2!inner(id)" }, { "id", "eq." .. chat_b } })
      assert.same({}, rows)
      -- Bob's document sits in Alice's chat: Alice does not see it, Bob sees no chat.
      rows = get(alice, "Chat", { { "select", "id,Document(title)" }, { "id", "eq." .. chat_a } })
      assert.same({ { id = chat_a, Document = { { title = "A doc" } } } }, rows)
      rows = get(bob, "Document", { { "select", "title,Chat(title)" }, { "id", "eq." .. doc_b_in_a } })
      assert.same({ { title = "B doc in A chat", Chat = cjson.null } }, rows)
      assert.same({}, get(bob, "Document", { { "select", "title,Chat!inner(title)" }, { "id", "eq." .. doc_b_in_a } }))
    end)

    it("scope user-owned rows per caller", function()
      local q = { { "select", "id,embed_spec_notes(body)" }, { "order", "id" } }
      assert.same({ { id = 1, embed_spec_notes = { { body = "a1" } } }, { id = 2, embed_spec_notes = { { body = "a2" } } },
        { id = 3, embed_spec_notes = {} } }, get(alice, "embed_spec_tasks", q))
      assert.same({ { body = "b1" } }, get(bob, "embed_spec_tasks", q)[1].embed_spec_notes)
      assert.same({}, get(anon, "embed_spec_tasks", q)[1].embed_spec_notes)
      q[1] = { "select", "id,embed_spec_notes!inner(body)" }
      assert.same({ 1 }, pluck(get(bob, "embed_spec_tasks", q), "id"))
    end)

    it("embed a table without a policy as no rows for all but service_role (as RLS would)", function()
      local q = { { "select", "id,embed_spec_secret(v)" }, { "id", "eq.1" } }
      assert.same({ { id = 1, embed_spec_secret = {} } }, get(alice, "embed_spec_tasks", q))
      assert.same({ { id = 1, embed_spec_secret = {} } }, get(anon, "embed_spec_tasks", q))
      assert.same({ { id = 1, embed_spec_secret = { { v = "s1" } } } }, get(service, "embed_spec_tasks", q))
      q[1] = { "select", "id,embed_spec_secret!inner(v)" }
      assert.same({}, get(anon, "embed_spec_tasks", q))
      -- A direct read is refused outright.
      get(anon, "embed_spec_secret", { { "select", "v" } }, 401)
    end)

    it("give anon nothing it could not read directly", function()
      assert.same({}, get(anon, "Chat", { { "select", "id,Message_v2(id)" } }))
      assert.same({}, get(anon, "Message_v2", { { "select", "id,Chat(id)" } }))
      local rows = get(anon, "embed_spec_tasks", { { "select", "id,embed_spec_notes(id),embed_spec_secret(id)" }, { "order", "id" } })
      for _, r in ipairs(rows) do
        assert.same({}, r.embed_spec_notes)
        assert.same({}, r.embed_spec_secret)
      end
    end)

    it("hide the columns the embedded table's policy hides", function()
      local q = { { "select", "id,owner:embed_spec_people!owner_id(*)" }, { "id", "eq.1" } }
      assert.same({ { id = 1, owner = { id = 1, name = "ann" } } }, get(alice, "embed_spec_tasks", q))
      assert.same({ { id = 1, owner = { id = 1, name = "ann", email = "ann@example.test" } } },
        get(service, "embed_spec_tasks", q))
      local doc = get(alice, "embed_spec_tasks", { { "select", "id,embed_spec_people!owner_id(email)" } }, 403)
      assert.equal("42501", doc.code)
      doc = get(alice, "embed_spec_tasks", { { "select", "id,embed_spec_people!owner_id(name)" },
        { "embed_spec_people.email", "like.*ann*" } }, 403)
      assert.equal("42501", doc.code)
    end)
  end)
end)
