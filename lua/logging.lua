-- lua/logging.lua: which user and agent activity strata logs, and under
-- which toggle of logging_settings.category_toggles (seed 003's lists).
-- Hot-reloaded: drop a line to stop logging that type, change a toggle to
-- move it.  A type or toggle the tables do not know fails the reload with
-- this file's line (strata.logrules).  Whether anything is logged at all is
-- logging_settings' (user_activity_logging_enabled,
-- agent_activity_logging_enabled, sampling), read live from admin_config.

local rules = require("strata.logrules").new()

-- user_activity_logs: activity type, category, toggle.
rules.user("auth_login", "auth", "log_auth_events")          -- sign-in (success = false: a failed one)
rules.user("auth_logout", "auth", "log_auth_events")
rules.user("auth_register", "auth", "log_auth_events")
rules.user("chat_create", "chat", "log_chat_events")
rules.user("chat_view", "chat", "log_chat_events")
rules.user("chat_delete", "chat", "log_chat_events")
rules.user("chat_message_send", "chat", "log_chat_events")
rules.user("document_create", "document", "log_document_events")
rules.user("document_view", "document", "log_document_events")
rules.user("document_update", "document", "log_document_events")  -- a new version is an update
rules.user("document_delete", "document", "log_document_events")
rules.user("vote_message", "vote", "log_vote_events")
rules.user("suggestion_view", "document", "log_document_events")
rules.user("file_upload", "file", "log_file_events")
rules.user("admin_config_update", "admin", "log_admin_events")
rules.user("admin_dashboard_view", "admin", "log_admin_events")
rules.user("admin_provider_view", "admin", "log_admin_events")
rules.user("artifact_create", "artifact", "log_artifact_events")
rules.user("artifact_execute", "artifact", "log_code_execution")

-- agent_activity_logs: operation type, toggle.
rules.agent("initialization", "log_ai_operations")
rules.agent("code_generation", "log_ai_operations")
rules.agent("document_generation", "log_ai_operations")
rules.agent("diagram_generation", "log_ai_operations")
rules.agent("streaming", "log_ai_operations")
rules.agent("tool_invocation", "log_tool_invocations")
rules.agent("search", "log_tool_invocations")
rules.agent("url_fetch", "log_tool_invocations")
rules.agent("mcp_operation", "log_tool_invocations")
rules.agent("code_execution", "log_code_execution")

-- /rest/v1 writes that are user activity (public schema tables).
rules.rest("Chat", "POST", "chat_create")
rules.rest("Chat", "DELETE", "chat_delete")
rules.rest("Message_v2", "POST", "chat_message_send")
rules.rest("Document", "POST", "document_create")
rules.rest("Document", "PATCH", "document_update")
rules.rest("Document", "DELETE", "document_delete")
rules.rest("Vote_v2", "POST", "vote_message")
rules.rest("Vote_v2", "PATCH", "vote_message")
rules.rest("admin_config", "PATCH", "admin_config_update")
rules.rest("admin_config", "POST", "admin_config_update")

return rules
