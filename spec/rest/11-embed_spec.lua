-- Resource embedding in select= end to end (strata.rest.embed): many-to-one
-- as an object or null, one-to-many as an array, aliases, disambiguation
-- by constraint or column, self-references, !inner, two levels deep,
-- filters / order / limit on embedded resources, PostgREST's errors, and
-- the row policies of every embedded table (the chat platform's real
-- policies, plus fixtures with a hidden column and with no policy at all);
-- many-to-many through junction tables, count, spread, ordering by an
-- embedded column, the max_rows cap, and embeds in writes' representation
-- and in table functions' results; views over the fixtures, which carry
-- their tables' foreign keys.
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
-- Signed-in callers may change tasks (to test writes' representation).
local TASKS = [[
return { select = function() return true end, update = function(ctx) return ctx.uid ~= nil end }
]]
-- Signed-in callers read, add and remove their own notes only.
local OWN_NOTES = [[
local function own(ctx) return ctx.uid and { author = ctx.uid } or false end
return { select = own, insert = own, delete = own }
]]
local RPC = [[
local yes = function() return true end
return { embed_spec_tasks_of = yes, embed_spec_titles = yes }
]]

local DROP = [[
drop function if exists public.embed_spec_tasks_of(int), public.embed_spec_titles();
drop table if exists public.embed_spec_secret, public.embed_spec_notes, public.embed_spec_tasks,
  public.embed_spec_profiles, public.embed_spec_people, public.embed_spec_tags, public.embed_spec_task_tags,
  public.embed_spec_person_tags, public.embed_spec_assign cascade;
]]

-- tags <-> tasks: a junction (task_tags) and a direct key (first_task_id),
-- so PGRST201; tags <-> people: a junction only (person_tags); assign has
-- both keys but they are not in its primary key, so it is no junction.
local FIXTURES = DROP .. [[
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
create table public.embed_spec_tags (id int primary key, name text not null,
  first_task_id int references public.embed_spec_tasks(id));
create table public.embed_spec_task_tags (task_id int references public.embed_spec_tasks(id),
  tag_id int references public.embed_spec_tags(id), primary key (task_id, tag_id));
create table public.embed_spec_person_tags (person_id int references public.embed_spec_people(id),
  tag_id int references public.embed_spec_tags(id), since int, primary key (person_id, tag_id));
create table public.embed_spec_assign (id int primary key, person_id int references public.embed_spec_people(id),
  tag_id int references public.embed_spec_tags(id));
insert into public.embed_spec_tags values (1, 'red', 1), (2, 'blue', null), (3, 'green', null);
insert into public.embed_spec_task_tags values (1, 1), (1, 2), (2, 3);
insert into public.embed_spec_person_tags values (1, 1, 2020), (1, 3, 2021), (2, 2, 2022);
-- Simple views (plain column references, renamed or not, one over another
-- view) carry their tables' keys; people_calc's id is an expression, so it
-- carries none.  secret_v has no policy file.
create view public.embed_spec_people_v as select id, name from public.embed_spec_people;
create view public.embed_spec_tasks_v as select id as task_id, title, owner_id from public.embed_spec_tasks;
create view public.embed_spec_tasks_vv as select task_id, owner_id from public.embed_spec_tasks_v;
create view public.embed_spec_secret_v as select task_id, v from public.embed_spec_secret;
create view public.embed_spec_people_calc as select id + 0 as id, name from public.embed_spec_people;
create function public.embed_spec_tasks_of(p_min int) returns setof public.embed_spec_tasks
  language sql stable as $$ select * from public.embed_spec_tasks where id >= p_min $$;
create function public.embed_spec_titles() returns table (id int, title text)
  language sql stable as $$ select id, title from public.embed_spec_tasks $$;
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
    srv.write(dir .. "/policies/public/embed_spec_tasks.lua", TASKS)
    srv.write(dir .. "/policies/public/embed_spec_tags.lua", READABLE)
    srv.write(dir .. "/policies/public/embed_spec_person_tags.lua", READABLE)
    srv.write(dir .. "/policies/rpc.lua", RPC)
    srv.write(dir .. "/policies/public/embed_spec_notes.lua", OWN_NOTES)
    srv.write(dir .. "/policies/public/embed_spec_profiles.lua", READABLE)
    srv.write(dir .. "/policies/public/embed_spec_people_v.lua", READABLE)
    srv.write(dir .. "/policies/public/embed_spec_tasks_v.lua", READABLE)
    srv.write(dir .. "/policies/public/embed_spec_tasks_vv.lua", READABLE)
    srv.write(dir .. "/policies/public/embed_spec_people_calc.lua", READABLE)
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
      local rows = get(alice, "Chat", { { "select", "id,title,Message_v2!chatId(id,role)" }, { "id", "eq." .. chat_a },
        { "Message_v2.order", "createdAt" } })
      assert.same({ { id = chat_a, title = "A one", Message_v2 = { { id = msg_a1, role = "user" },
        { id = msg_a2, role = "assistant" } } } }, rows)
    end)

    it("embeds many-to-one as an object, under an alias", function()
      local rows = get(alice, "Message_v2", { { "select", "id,chat:Chat!chatId(title,user_id)" }, { "id", "eq." .. msg_a1 } })
      assert.same({ { id = msg_a1, chat = { title = "A one", user_id = A } } }, rows)
    end)

    it("answers [] for no related rows and null for a missing to-one", function()
      local rows = get(alice, "Chat", { { "select", "id,messages:Message_v2!chatId(*)" }, { "id", "eq." .. chat_a2 } })
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
      local rows = get(alice, "Chat", { { "select", "id,Message_v2!chatId(role,Vote_v2(isUpvoted))" }, { "id", "eq." .. chat_a },
        { "Message_v2.order", "createdAt" } })
      assert.same({ { id = chat_a, Message_v2 = { { role = "user", Vote_v2 = {} },
        { role = "assistant", Vote_v2 = { { isUpvoted = true } } } } } }, rows)
      rows = get(alice, "Vote_v2", { { "select", "isUpvoted,Message_v2(role,Chat!chatId(title))" } })
      assert.same({ { isUpvoted = true, Message_v2 = { role = "assistant", Chat = { title = "A one" } } } }, rows)
    end)

    it("embeds with * alongside and leaves an empty embed out of the answer", function()
      local rows = get(alice, "Chat", { { "select", "*,Message_v2!chatId!inner()" }, { "id", "in.(" .. chat_a .. "," .. chat_a2 .. ")" } })
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
      local rows = get(alice, "Chat", { { "select", "id,Message_v2!chatId(role)" }, both(), { "Message_v2.role", "eq.assistant" },
        { "order", "createdAt" } })
      assert.equal(2, #rows)
      for _, r in ipairs(rows) do
        assert.same(r.id == chat_a and { { role = "assistant" } } or {}, r.Message_v2)
      end
    end)

    it("filter the parent too with !inner", function()
      local rows = get(alice, "Chat", { { "select", "id,Message_v2!chatId!inner(role)" }, both(),
        { "Message_v2.role", "eq.assistant" } })
      assert.same({ { id = chat_a, Message_v2 = { { role = "assistant" } } } }, rows)
      rows = get(alice, "Chat", { { "select", "id,Message_v2!chatId!inner(role)" }, both(), { "Message_v2.role", "eq.system" } })
      assert.same({}, rows)
    end)

    it("take or= / not. groups, by alias too", function()
      local rows = get(alice, "Chat", { { "select", "id,m:Message_v2!chatId(role)" }, { "id", "eq." .. chat_a },
        { "m.or", "(role.eq.system,role.eq.user)" } })
      assert.same({ { role = "user" } }, rows[1].m)
      rows = get(alice, "Chat", { { "select", "id,m:Message_v2!chatId(role)" }, { "id", "eq." .. chat_a },
        { "m.role", "not.eq.user" } })
      assert.same({ { role = "assistant" } }, rows[1].m)
    end)

    it("order, limit and offset a one-to-many embed", function()
      local q = { { "select", "id,Message_v2!chatId(id)" }, { "id", "eq." .. chat_a }, { "Message_v2.order", "createdAt.desc" },
        { "Message_v2.limit", "1" } }
      assert.same({ { id = msg_a2 } }, get(alice, "Chat", q)[1].Message_v2)
      q[#q + 1] = { "Message_v2.offset", "1" }
      assert.same({ { id = msg_a1 } }, get(alice, "Chat", q)[1].Message_v2)
    end)

    it("reach a nested embed by its path", function()
      local rows = get(alice, "Chat", { { "select", "id,Message_v2!chatId(role,Vote_v2!inner(isUpvoted))" }, { "id", "eq." .. chat_a },
        { "Message_v2.Vote_v2.isUpvoted", "is.false" } })
      assert.same({ { id = chat_a, Message_v2 = {} } }, rows)
    end)

    it("count the parent rows !inner keeps", function()
      local code, rows = alice.get(url("Chat", { { "select", "id,Message_v2!chatId!inner(id)" }, both() }),
        { Prefer = "count=exact" })
      assert.equal(200, code)
      assert.equal(1, #rows)
    end)

    it("answer 400 naming what is wrong", function()
      local doc = get(alice, "Chat", { { "select", "id" }, { "Message_v2.role", "eq.user" } }, 400)
      assert.equal("PGRST108", doc.code)
      assert.equal("'Message_v2' is not an embedded resource in this request", doc.message)
      doc = get(alice, "Chat", { { "select", "id,Message_v2!chatId(id)" }, { "Message_v2.limit", "-1" } }, 400)
      assert.matches("Message_v2.limit", doc.message, 1, true)
      doc = get(alice, "Chat", { { "select", "id,Message_v2!chatId(id)" }, { "Message_v2.role", "zz.user" } }, 400)
      assert.equal("PGRST100", doc.code)
      assert.equal('"failed to parse filter (zz.user)" (line 1, column 1)', doc.message) -- PostgREST's words
      assert.equal('unexpected "z" expecting "not" or operator (eq, gt, ...)', doc.details)
      doc = get(alice, "Chat", { { "select", "id,Message_v2!chatId(nope)" } }, 400)
      assert.equal("42703", doc.code)
      doc = get(alice, "Chat", { { "select", "id,Message_v2!a!b(id)" } }, 400)
      assert.equal("PGRST100", doc.code)
      assert.matches("Message_v2!a!b(id)", doc.details, 1, true)
    end)

  end)

  describe("row policies", function()
    it("never show user A the rows of user B, at any depth", function()
      local rows = get(alice, "Chat", { { "select", "id,Message_v2!chatId(id,Vote_v2(messageId)),Document(id),Vote_v2(chatId)" } })
      local seen = strings(rows)
      assert.is_true(seen[chat_a] and seen[msg_a1] and seen[doc_a] or false)
      for _, id in ipairs({ chat_b, msg_b, doc_b, doc_b_in_a, B }) do assert.is_nil(seen[id], id) end
    end)

    it("apply the embedded table's own policy when the parent is visible", function()
      -- An admin reads every chat, but only the messages of their own chats.
      local rows = get(admin, "Chat", { { "select", "id,Message_v2!chatId(id)" }, { "id", "eq." .. chat_b } })
      assert.same({ { id = chat_b, Message_v2 = {} } }, rows)
      rows = get(admin, "Chat", { { "select", "id,Message_v2!chatId!inner(id)" }, { "id", "eq." .. chat_b } })
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
      assert.same({}, get(anon, "Chat", { { "select", "id,Message_v2!chatId(id)" } }))
      assert.same({}, get(anon, "Message_v2", { { "select", "id,Chat!chatId(id)" } }))
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
  describe("many-to-many", function()
    it("embeds through a junction whose keys are in its primary key, with the embed's parameters", function()
      local rows = get(alice, "embed_spec_people", { { "select", "name,embed_spec_tags(name)" }, { "order", "id" },
        { "embed_spec_tags.order", "name" } })
      assert.same({ { name = "ann", embed_spec_tags = { { name = "green" }, { name = "red" } } },
        { name = "ben", embed_spec_tags = { { name = "blue" } } } }, rows)
      rows = get(alice, "embed_spec_tags", { { "select", "name,embed_spec_people!inner(name)" },
        { "embed_spec_people.name", "eq.ben" } })
      assert.same({ { name = "blue", embed_spec_people = { { name = "ben" } } } }, rows)
      rows = get(alice, "embed_spec_people", { { "select", "name,t:embed_spec_tags(name)" }, { "id", "eq.1" },
        { "t.order", "name.desc" }, { "t.limit", "1" } })
      assert.same({ { name = "ann", t = { { name = "red" } } } }, rows)
    end)

    it("answers 300 PGRST201 when a direct key and a junction both relate the tables, as PostgREST", function()
      local doc = get(service, "embed_spec_tasks", { { "select", "id,embed_spec_tags(name)" } }, 300)
      assert.equal("PGRST201", doc.code)
      assert.same({ "embed_spec_tags_first_task_id_fkey using embed_spec_tasks(id) and embed_spec_tags(first_task_id)",
        "embed_spec_task_tags using embed_spec_task_tags_task_id_fkey(task_id) and embed_spec_task_tags_tag_id_fkey(tag_id)" },
        pluck(doc.details, "relationship"))
      assert.same({ "many-to-many", "one-to-many" }, pluck(doc.details, "cardinality"))
      assert.matches("'embed_spec_tags!embed_spec_task_tags'", doc.hint, 1, true)
      -- The chat platform's own case: Vote_v2 joins Chat and Message_v2.
      doc = get(alice, "Chat", { { "select", "id,Message_v2(id)" } }, 300)
      assert.matches("'Message_v2!Vote_v2'", doc.hint, 1, true)
    end)

    it("takes the junction's name as the hint, and applies the junction's policy too", function()
      local q = { { "select", "id,embed_spec_tags!embed_spec_task_tags(name)" }, { "order", "id" },
        { "embed_spec_tags.order", "id" } }
      assert.same({ { id = 1, embed_spec_tags = { { name = "red" }, { name = "blue" } } },
        { id = 2, embed_spec_tags = { { name = "green" } } }, { id = 3, embed_spec_tags = {} } }, get(service, "embed_spec_tasks", q))
      -- embed_spec_task_tags has no policy: as RLS would, it hides every link.
      for _, r in ipairs(get(alice, "embed_spec_tasks", q)) do assert.same({}, r.embed_spec_tags) end
      local rows = get(service, "embed_spec_tasks", { { "select", "id,embed_spec_tags!first_task_id(name)" }, { "id", "eq.1" } })
      assert.same({ { id = 1, embed_spec_tags = { { name = "red" } } } }, rows)
    end)

    it("ignores a table whose two foreign keys are not in its primary key", function()
      local doc = get(service, "embed_spec_people", { { "select", "id,embed_spec_tags!embed_spec_assign(name)" } }, 400)
      assert.equal("PGRST200", doc.code)
    end)
  end)

  describe("count, spread and ordering by an embed", function()
    it("counts the embedded rows the caller may read, as other(count) or n:count()", function()
      local q = { { "select", "id,embed_spec_notes(count)" }, { "order", "id" } }
      assert.same({ { id = 1, embed_spec_notes = { { count = 1 } } }, { id = 2, embed_spec_notes = { { count = 1 } } },
        { id = 3, embed_spec_notes = { { count = 0 } } } }, get(alice, "embed_spec_tasks", q))
      assert.same({ { count = 2 } }, get(service, "embed_spec_tasks", q)[1].embed_spec_notes)
      local rows = get(service, "embed_spec_tasks", { { "select", "id,notes:embed_spec_notes(n:count())" }, { "id", "eq.1" },
        { "notes.body", "eq.b1" } })
      assert.same({ { id = 1, notes = { { n = 1 } } } }, rows)
    end)

    it("spreads a to-one embed's columns into the parent, hidden columns left out", function()
      local rows = get(alice, "embed_spec_tasks", { { "select", "id,...embed_spec_people!owner_id(owner:name)" },
        { "order", "id" } })
      assert.same({ { id = 1, owner = "ann" }, { id = 2, owner = "ben" }, { id = 3, owner = cjson.null } }, rows)
      rows = get(alice, "embed_spec_tasks", { { "select", "title,...embed_spec_people!owner_id(*,embed_spec_profiles(bio))" },
        { "id", "eq.1" } })
      assert.same({ { title = "write", id = 1, name = "ann", embed_spec_profiles = { bio = "hi" } } }, rows)
      local code, csv = alice.get(url("embed_spec_tasks", { { "select", "id,...embed_spec_people!owner_id(owner:name)" },
        { "order", "id" } }), { Accept = "text/csv" })
      assert.equal(200, code)
      assert.equal("id,owner\n1,ann\n2,ben\n3,", csv)
      -- A to-many spread (PostgREST 13): an array of each column's values.
      rows = get(alice, "embed_spec_people", { { "select", "id,...embed_spec_tasks!owner_id(title)" }, { "order", "id" } })
      assert.same({ { id = 1, title = { "write" } }, { id = 2, title = { "review" } } }, rows)
    end)

    it("orders the parent by a to-one embed's column, by alias", function()
      local q = { { "select", "id,owner:embed_spec_people!owner_id(name)" }, { "order", "owner(name).desc.nullslast,id" } }
      assert.same({ 2, 1, 3 }, (function(rows)
        local ids = {}
        for i, r in ipairs(rows) do ids[i] = r.id end
        return ids
      end)(get(alice, "embed_spec_tasks", q)))
      q[2] = { "order", "owner(name).asc.nullsfirst" }
      assert.equal(3, get(alice, "embed_spec_tasks", q)[1].id)
      local doc = get(alice, "embed_spec_tasks", { { "select", "id,embed_spec_notes(body)" }, { "order", "embed_spec_notes(body)" } }, 400)
      assert.equal("PGRST118", doc.code)
      doc = get(alice, "embed_spec_tasks", { { "select", "id" }, { "order", "owner(name)" } }, 400)
      assert.equal("PGRST108", doc.code)
      doc = get(alice, "embed_spec_tasks", { { "select", "id,owner:embed_spec_people!owner_id(name)" }, { "order", "owner(email)" } }, 403)
      assert.equal("42501", doc.code)
    end)

    it("caps a to-many embed at max_rows, like the top level", function()
      local capped = srv.start({ STRATA_LUA_DIR = dir, STRATA_JWT_SECRET = SECRET, STRATA_ACCESS_LOG = "off",
        STRATA_MAX_ROWS = "1" })
      local ok, err = pcall(function()
        assert.equal(200, (srv.await(capped.port, "/ready", 200, 20)), capped.log())
        local client = srv.rest_client(capped.port, srv.token(SECRET, "--role service_role"))
        local code, rows = client.get(url("embed_spec_tasks", { { "select", "id,subtasks:embed_spec_tasks(id)" },
          { "id", "eq.1" }, { "subtasks.limit", "5" } }))
        assert.equal(200, code)
        assert.equal(1, #rows[1].subtasks)
        code, rows = client.post(url("rpc/embed_spec_tasks_of", { { "select", "id,embed_spec_tags!embed_spec_task_tags(id)" },
          { "order", "id" }, { "embed_spec_tags.order", "id" } }), { p_min = 1 })
        assert.equal(200, code)
        assert.same({ { id = 1, embed_spec_tags = { { id = 1 } } } }, rows)
      end)
      assert.equal(0, capped.stop(), capped.log())
      capped.cleanup()
      assert(ok, err)
    end)
  end)

  describe("writes' representation", function()
    it("embeds in an insert, under the embedded tables' policies: no other user's rows", function()
      local code, rows = bob.post(url("embed_spec_notes", { { "select", "body,task:embed_spec_tasks(title,embed_spec_notes(body))" } }),
        { id = 20, task_id = 1, author = B, body = "b2" })
      assert.equal(201, code, cjson.encode(rows))
      -- The statement reads the notes as they were before it (b2 is not yet there); Alice's a1 never shows.
      assert.same({ { body = "b2", task = { title = "write", embed_spec_notes = { { body = "b1" } } } } }, rows)
      assert.is_nil(strings(rows)["a1"])
    end)

    it("embeds in an update and a delete, with the embeds' parameters and hidden columns", function()
      local code, rows = bob.patch(url("embed_spec_tasks", { { "id", "eq.1" },
        { "select", "id,embed_spec_notes(body),owner:embed_spec_people!owner_id(*)" }, { "embed_spec_notes.order", "body" } }),
        { title = "write" })
      assert.equal(200, code, cjson.encode(rows))
      assert.same({ { id = 1, embed_spec_notes = { { body = "b1" }, { body = "b2" } }, owner = { id = 1, name = "ann" } } }, rows)
      code, rows = bob.delete(url("embed_spec_notes", { { "id", "eq.20" }, { "select", "body,...embed_spec_tasks(title)" } }))
      assert.equal(200, code, cjson.encode(rows))
      assert.same({ { body = "b2", title = "write" } }, rows)
      code, rows = bob.patch(url("embed_spec_tasks", { { "id", "eq.1" }, { "select", "id,embed_spec_people!owner_id(email)" } }),
        { title = "write" })
      assert.equal(403, code)
    end)

    it("embeds in a PUT, many-to-many included, and !inner filters the representation only", function()
      local code, rows = srv.rest(server.port, "PUT", "/rest/v1/" .. url("embed_spec_people", { { "id", "eq.1" },
        { "select", "name,embed_spec_tags(name),embed_spec_profiles(bio)" }, { "embed_spec_tags.order", "name" } }),
        { id = 1, name = "ann" }, { ["Content-Type"] = "application/json", Prefer = "return=representation, tx=rollback",
          Authorization = "Bearer " .. srv.token(SECRET, "--role service_role") })
      assert.equal(200, code, cjson.encode(rows))
      assert.same({ { name = "ann", embed_spec_tags = { { name = "green" }, { name = "red" } }, embed_spec_profiles = { bio = "hi" } } },
        rows)
      code, rows = service.patch(url("embed_spec_tasks", { { "id", "in.(1,3)" }, { "select", "id,embed_spec_notes!inner(id)" },
        { "embed_spec_notes.order", "id" } }), { parent_id = cjson.null }, { Prefer = "return=representation, tx=rollback" })
      assert.equal(200, code, cjson.encode(rows))
      assert.same({ { id = 1, embed_spec_notes = { { id = 1 }, { id = 2 } } } }, rows)
    end)
  end)

  describe("views", function()
    it("embed a view as the parent of a table's foreign key, choosing between keys as for tables", function()
      local doc = get(alice, "embed_spec_tasks", { { "select", "id,embed_spec_people_v(name)" } }, 300)
      assert.equal("PGRST201", doc.code)
      assert.equal(2, #doc.details)
      local q = { { "select", "id,owner:embed_spec_people_v!owner_id(*)" }, { "order", "id" } }
      assert.same({ { id = 1, owner = { id = 1, name = "ann" } }, { id = 2, owner = { id = 2, name = "ben" } },
        { id = 3, owner = cjson.null } }, get(alice, "embed_spec_tasks", q))
      -- The column still names the table's relationship only, as in PostgREST.
      q[1] = { "select", "id,owner_id(name)" }
      assert.same({ id = 1, owner_id = { name = "ann" } }, get(alice, "embed_spec_tasks", q)[1])
      q = { { "select", "name,embed_spec_tasks!reviewer_id(id)" }, { "order", "id" } }
      assert.same({ { name = "ann", embed_spec_tasks = { { id = 2 } } }, { name = "ben", embed_spec_tasks = { { id = 1 } } } },
        get(alice, "embed_spec_people_v", q))
    end)

    it("embed a view as the child, through renamed columns and a view over a view, both ways", function()
      local q = { { "select", "id,embed_spec_tasks_v(task_id,title)" }, { "order", "id" } }
      assert.same({ { id = 1, embed_spec_tasks_v = { { task_id = 1, title = "write" } } },
        { id = 2, embed_spec_tasks_v = { { task_id = 2, title = "review" } } } }, get(alice, "embed_spec_people", q))
      q = { { "select", "task_id,embed_spec_people_v(name)" }, { "order", "task_id" } }
      assert.same({ { task_id = 1, embed_spec_people_v = { name = "ann" } }, { task_id = 2, embed_spec_people_v = { name = "ben" } },
        { task_id = 3, embed_spec_people_v = cjson.null } }, get(alice, "embed_spec_tasks_v", q))
      q = { { "select", "task_id,embed_spec_people!inner(name)" }, { "embed_spec_people.name", "eq.ben" } }
      assert.same({ { task_id = 2, embed_spec_people = { name = "ben" } } }, get(alice, "embed_spec_tasks_vv", q))
    end)

    it("apply the embedded table's policy under a view parent, and a view's own policy when embedded", function()
      local q = { { "select", "task_id,embed_spec_notes(body)" }, { "order", "task_id" }, { "limit", "2" } }
      assert.same({ { task_id = 1, embed_spec_notes = { { body = "a1" } } }, { task_id = 2, embed_spec_notes = { { body = "a2" } } } },
        get(alice, "embed_spec_tasks_v", q))
      assert.same({ { task_id = 1, embed_spec_notes = { { body = "b1" } } }, { task_id = 2, embed_spec_notes = {} } },
        get(bob, "embed_spec_tasks_v", q))
      -- A view without a policy file embeds as no rows but for service_role.
      q = { { "select", "id,embed_spec_secret_v(v)" }, { "id", "eq.1" } }
      assert.same({ { id = 1, embed_spec_secret_v = {} } }, get(alice, "embed_spec_tasks", q))
      assert.same({ { id = 1, embed_spec_secret_v = { { v = "s1" } } } }, get(service, "embed_spec_tasks", q))
      q[1] = { "select", "id,embed_spec_secret_v!inner(v)" }
      assert.same({}, get(anon, "embed_spec_tasks", q))
      -- The view shows no email, so the people's hidden column never comes up.
      q = { { "select", "id,embed_spec_people_v!owner_id(*)" }, { "id", "eq.1" } }
      assert.same({ { id = 1, embed_spec_people_v = { id = 1, name = "ann" } } }, get(anon, "embed_spec_tasks", q))
    end)

    it("answer 400 PGRST200 for a view whose key column is an expression", function()
      local doc = get(alice, "embed_spec_tasks", { { "select", "id,embed_spec_people_calc(name)" } }, 400)
      assert.equal("PGRST200", doc.code)
      doc = get(alice, "embed_spec_people_calc", { { "select", "id,embed_spec_tasks(id)" } }, 400)
      assert.equal("PGRST200", doc.code)
    end)
  end)

  describe("table functions", function()
    it("embed along the foreign keys of the table type they return, under the policies", function()
      local q = { { "select", "id,embed_spec_notes(body),owner:embed_spec_people!owner_id(*)" }, { "order", "id" },
        { "embed_spec_notes.order", "body" } }
      local code, rows = alice.post(url("rpc/embed_spec_tasks_of", q), { p_min = 2 })
      assert.equal(200, code, cjson.encode(rows))
      assert.same({ { id = 2, embed_spec_notes = { { body = "a2" } }, owner = { id = 2, name = "ben" } },
        { id = 3, embed_spec_notes = {}, owner = cjson.null } }, rows)
      code, rows = alice.get(url("rpc/embed_spec_tasks_of", { { "p_min", "1" }, { "select", "id,embed_spec_notes!inner(body)" },
        { "embed_spec_notes.body", "eq.a1" } }))
      assert.equal(200, code, cjson.encode(rows))
      assert.same({ { id = 1, embed_spec_notes = { { body = "a1" } } } }, rows)
      code, rows = alice.post(url("rpc/embed_spec_tasks_of", { { "select", "id,...embed_spec_people!owner_id(name)" },
        { "order", "embed_spec_people(name).desc.nullslast,id" } }), { p_min = 1 })
      assert.equal(200, code, cjson.encode(rows))
      assert.same({ { id = 2, name = "ben" }, { id = 1, name = "ann" }, { id = 3, name = cjson.null } }, rows)
    end)

    it("answer 400 PGRST200 for a function returning TABLE(...), which has no foreign keys", function()
      local code, doc = alice.post(url("rpc/embed_spec_titles", { { "select", "id,embed_spec_notes(body)" } }), {})
      assert.equal(400, code, cjson.encode(doc))
      assert.equal("PGRST200", doc.code)
    end)
  end)
end)
