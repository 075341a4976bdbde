-- Seed 003 core tables (sql/020_chat.sql): "Chat", "Message_v2", "Vote_v2",
-- "Document", "Suggestion", "Stream".
local h = require("helpers")

local function chat(user)
  local id = h.uuid()
  h.accepts(([[insert into public."Chat"(id, title, user_id) values (%s, 'a chat', %s)]])
    :format(h.lit(id), h.lit(user)))
  return id
end

local function message(chat_id)
  local id = h.uuid()
  h.accepts(([[insert into public."Message_v2"(id, "chatId", role, parts) values (%s, %s, 'user', '[]')]])
    :format(h.lit(id), h.lit(chat_id)))
  return id
end

-- A document version at a fixed "createdAt" so that specs can name its key.
local function document(user, opts)
  opts = opts or {}
  local id = opts.id or h.uuid()
  local at = opts.at or "2024-05-01 10:00:00"
  h.accepts(([[insert into public."Document"(id, "createdAt", title, user_id, chat_id, parent_version_id, version_number)
               values (%s, %s, 'a document', %s, %s, %s, %d)]])
    :format(h.lit(id), h.lit(at), h.lit(user), h.lit(opts.chat), h.lit(opts.parent), opts.version or 1))
  return id, at
end

local function count(sql)
  return tonumber(h.scalar(sql))
end

describe("Chat", function()
  it("accepts a chat with only a title and a user, private with zero totals by default", function()
    local user = h.user()
    local id = chat(user)
    local rows = assert(h.query(([[select visibility, total_input_tokens, total_output_tokens, total_cost,
                                          "createdAt" is not null as has_created, updated_at is not null as has_updated
                                     from public."Chat" where id = %s]]):format(h.lit(id))))
    assert.same({ { visibility = "private", total_input_tokens = "0", total_output_tokens = "0",
                    total_cost = "0.000000", has_created = "t", has_updated = "t" } }, rows)
  end)

  it("accepts a public chat", function()
    h.accepts(([[insert into public."Chat"(title, user_id, visibility) values ('open', %s, 'public')]])
      :format(h.lit(h.user())))
  end)

  it("refuses a visibility other than public or private", function()
    h.refuses("23514", ([[insert into public."Chat"(title, user_id, visibility) values ('x', %s, 'friends')]])
      :format(h.lit(h.user())))
  end)

  it("refuses a chat without a title", function()
    h.refuses("23502", ([[insert into public."Chat"(user_id) values (%s)]]):format(h.lit(h.user())))
  end)
end)

describe("Message_v2", function()
  it("accepts a message in an existing chat, with no attachments by default", function()
    local id = message(chat(h.user()))
    assert.equal("[]", h.scalar(([[select attachments::text from public."Message_v2" where id = %s]]):format(h.lit(id))))
  end)

  it("refuses a message in a chat that does not exist", function()
    h.refuses("23503", ([[insert into public."Message_v2"("chatId", role, parts) values (%s, 'user', '[]')]])
      :format(h.lit(h.uuid())))
  end)

  it("refuses a message without parts", function()
    h.refuses("23502", ([[insert into public."Message_v2"("chatId", role) values (%s, 'user')]])
      :format(h.lit(chat(h.user()))))
  end)

  it("goes away with its chat", function()
    local c = chat(h.user())
    message(c); message(c)
    h.accepts(([[delete from public."Chat" where id = %s]]):format(h.lit(c)))
    assert.equal(0, count(([[select count(*) from public."Message_v2" where "chatId" = %s]]):format(h.lit(c))))
  end)
end)

describe("Vote_v2", function()
  it("accepts one vote per message of a chat", function()
    local c = chat(h.user())
    local m = message(c)
    h.accepts(([[insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, true)]])
      :format(h.lit(c), h.lit(m)))
  end)

  it("refuses a second vote on the same message of the same chat", function()
    local c = chat(h.user())
    local m = message(c)
    h.refuses("23505", ([[insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, true);
                          insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, false)]])
      :format(h.lit(c), h.lit(m), h.lit(c), h.lit(m)))
  end)

  it("refuses a vote on a message that does not exist", function()
    h.refuses("23503", ([[insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, true)]])
      :format(h.lit(chat(h.user())), h.lit(h.uuid())))
  end)

  it("refuses a vote in a chat that does not exist", function()
    local m = message(chat(h.user()))
    h.refuses("23503", ([[insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, true)]])
      :format(h.lit(h.uuid()), h.lit(m)))
  end)

  it("refuses a vote without its up/down value", function()
    local c = chat(h.user())
    h.refuses("23502", ([[insert into public."Vote_v2"("chatId", "messageId") values (%s, %s)]])
      :format(h.lit(c), h.lit(message(c))))
  end)

  it("goes away with its message", function()
    local c = chat(h.user())
    local m = message(c)
    h.accepts(([[insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, true)]])
      :format(h.lit(c), h.lit(m)))
    h.accepts(([[delete from public."Message_v2" where id = %s]]):format(h.lit(m)))
    assert.equal(0, count(([[select count(*) from public."Vote_v2" where "messageId" = %s]]):format(h.lit(m))))
  end)

  it("goes away with its chat", function()
    local c = chat(h.user())
    h.accepts(([[insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, false)]])
      :format(h.lit(c), h.lit(message(c))))
    h.accepts(([[delete from public."Chat" where id = %s]]):format(h.lit(c)))
    assert.equal(0, count(([[select count(*) from public."Vote_v2" where "chatId" = %s]]):format(h.lit(c))))
  end)
end)

describe("Document", function()
  it("accepts several versions of one document, told apart by createdAt", function()
    local user = h.user()
    local id = document(user, { at = "2024-05-01 10:00:00" })
    document(user, { id = id, at = "2024-05-01 11:00:00", version = 2, parent = id })
    assert.equal(2, count(([[select count(*) from public."Document" where id = %s]]):format(h.lit(id))))
  end)

  it("refuses two versions of one document with the same createdAt", function()
    local user = h.user()
    local id = document(user)
    h.refuses("23505", ([[insert into public."Document"(id, "createdAt", title, user_id)
                          values (%s, '2024-05-01 10:00:00', 'again', %s)]]):format(h.lit(id), h.lit(user)))
  end)

  it("is a text document at version 1 with empty metadata by default", function()
    local id = h.uuid()
    h.accepts(([[insert into public."Document"(id, title, user_id) values (%s, 't', %s)]])
      :format(h.lit(id), h.lit(h.user())))
    assert.same({ { kind = "text", version_number = "1", metadata = "{}" } },
      assert(h.query(([[select kind, version_number, metadata::text as metadata from public."Document" where id = %s]])
        :format(h.lit(id)))))
  end)

  it("accepts python code, mermaid code and sheet documents", function()
    local user = h.user()
    h.accepts(([[insert into public."Document"(title, user_id, kind) values
                   ('p', %s, 'python code'), ('m', %s, 'mermaid code'), ('s', %s, 'sheet')]])
      :format(h.lit(user), h.lit(user), h.lit(user)))
  end)

  it("refuses an unknown kind", function()
    h.refuses("23514", ([[insert into public."Document"(title, user_id, kind) values ('x', %s, 'video')]])
      :format(h.lit(h.user())))
  end)

  it("refuses a document without a title", function()
    h.refuses("23502", ([[insert into public."Document"(user_id) values (%s)]]):format(h.lit(h.user())))
  end)

  it("refuses a chat_id that names no chat", function()
    h.refuses("23503", ([[insert into public."Document"(title, user_id, chat_id) values ('x', %s, %s)]])
      :format(h.lit(h.user()), h.lit(h.uuid())))
  end)

  it("goes away with the chat it was created in", function()
    local user = h.user()
    local c = chat(user)
    document(user, { chat = c })
    document(user, { chat = c })
    h.accepts(([[delete from public."Chat" where id = %s]]):format(h.lit(c)))
    assert.equal(0, count(([[select count(*) from public."Document" where chat_id = %s]]):format(h.lit(c))))
  end)

  it("accepts a parent_version_id naming the document's own id (versions share it)", function()
    local user = h.user()
    local id = document(user)
    document(user, { id = id, at = "2024-05-02 09:00:00", version = 2, parent = id })
    assert.equal(id, h.scalar(([[select parent_version_id from public."Document" where id = %s and version_number = 2]])
      :format(h.lit(id))))
  end)

  it("refuses a parent_version_id that names no document", function()
    h.refuses("23503", ([[insert into public."Document"(title, user_id, parent_version_id) values ('x', %s, %s)]])
      :format(h.lit(h.user()), h.lit(h.uuid())))
  end)

  it("sets parent_version_id to NULL, keeping the row, when the parent version is deleted", function()
    local user = h.user()
    local at = "2024-06-01 08:00:00"
    local parent = document(user, { at = at })
    local child = document(user, { at = at, parent = parent })
    h.accepts(([[delete from public."Document" where id = %s]]):format(h.lit(parent)))
    assert.same({ { parent_version_id = nil, created = at } },
      assert(h.query(([[select parent_version_id, "createdAt"::text as created from public."Document" where id = %s]])
        :format(h.lit(child)))))
  end)
end)

describe("Suggestion", function()
  local function suggestion(doc, at, user)
    local id = h.uuid()
    h.accepts(([[insert into public."Suggestion"(id, "documentId", "documentCreatedAt", "originalText", "suggestedText", user_id)
                 values (%s, %s, %s, 'old', 'new', %s)]]):format(h.lit(id), h.lit(doc), h.lit(at), h.lit(user)))
    return id
  end

  it("accepts a suggestion on an existing document version, unresolved by default", function()
    local user = h.user()
    local doc, at = document(user)
    local id = suggestion(doc, at, user)
    assert.equal("f", h.scalar(([[select "isResolved" from public."Suggestion" where id = %s]]):format(h.lit(id))))
  end)

  it("refuses a suggestion on a version that does not exist", function()
    local user = h.user()
    local doc = document(user, { at = "2024-05-01 10:00:00" })
    h.refuses("23503", ([[insert into public."Suggestion"("documentId", "documentCreatedAt", "originalText", "suggestedText", user_id)
                          values (%s, '1999-01-01 00:00:00', 'a', 'b', %s)]]):format(h.lit(doc), h.lit(user)))
  end)

  it("refuses a suggestion without suggested text", function()
    local user = h.user()
    local doc, at = document(user)
    h.refuses("23502", ([[insert into public."Suggestion"("documentId", "documentCreatedAt", "originalText", user_id)
                          values (%s, %s, 'a', %s)]]):format(h.lit(doc), h.lit(at), h.lit(user)))
  end)

  it("goes away with its document version", function()
    local user = h.user()
    local doc, at = document(user)
    suggestion(doc, at, user); suggestion(doc, at, user)
    h.accepts(([[delete from public."Document" where id = %s]]):format(h.lit(doc)))
    assert.equal(0, count(([[select count(*) from public."Suggestion" where "documentId" = %s]]):format(h.lit(doc))))
  end)
end)

describe("Stream", function()
  it("accepts a stream of an existing chat", function()
    h.accepts(([[insert into public."Stream"("chatId") values (%s)]]):format(h.lit(chat(h.user()))))
  end)

  it("refuses a stream of a chat that does not exist", function()
    h.refuses("23503", ([[insert into public."Stream"("chatId") values (%s)]]):format(h.lit(h.uuid())))
  end)

  it("goes away with its chat", function()
    local c = chat(h.user())
    h.accepts(([[insert into public."Stream"("chatId") values (%s), (%s)]]):format(h.lit(c), h.lit(c)))
    h.accepts(([[delete from public."Chat" where id = %s]]):format(h.lit(c)))
    assert.equal(0, count(([[select count(*) from public."Stream" where "chatId" = %s]]):format(h.lit(c))))
  end)
end)

describe("chat indexes", function()
  it("exist under the names the seed gives", function()
    local names = {
      "idx_chat_user_id", "idx_chat_user_created", "idx_message_chat", "idx_document_user_id",
      "idx_document_user", "idx_document_versions", "idx_document_chat", "idx_document_parent",
      "idx_document_kind", "idx_suggestion_user_id",
    }
    local quoted = {}
    for i, n in ipairs(names) do quoted[i] = h.lit(n) end
    assert.equal(#names, count(("select count(*) from pg_indexes where schemaname = 'public' and indexname in (%s)")
      :format(table.concat(quoted, ", "))))
  end)
end)
