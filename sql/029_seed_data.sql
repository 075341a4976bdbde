-- Seed 003 (chat platform), seed data.  EXAMPLE DATA: a starting
-- configuration for a fresh install, meant to be edited from the admin
-- dashboard afterwards, not reference data the code depends on.
--   admin_config: app_settings, logging_settings and the six agent
--     configurations ({agent_type}_{provider}) for each of google, openai
--     and anthropic: 20 rows.
--   model_config: 4 google, 3 openai and 3 anthropic models with pricing
--     per million tokens: 10 rows, one default per provider.
-- Re-applying this file changes nothing: rows whose key exists are skipped,
-- so an admin's later edits survive.
--
-- The seed gives Google's agents in full (tools and rate limits) and says the
-- OpenAI and Anthropic ones are "similar": they get the same tools, are
-- disabled (app_settings makes google the active provider) and take the
-- lower rate limits of the seed's project.  System prompts are abridged.
-- Model prices, context windows and output limits, which the seed does not
-- list, are those of the seed's project.

insert into public.admin_config (config_key, config_data) values
('app_settings', '{
  "activeProvider": "google",
  "availableProviders": ["google", "openai", "anthropic"]
}'),
('logging_settings', '{
  "error_logging_enabled": true,
  "user_activity_logging_enabled": false,
  "agent_activity_logging_enabled": false,
  "log_retention_days": {
    "error_logs": 90,
    "user_activity_logs": 30,
    "agent_activity_logs": 7
  },
  "category_toggles": {
    "log_auth_events": true,
    "log_chat_events": true,
    "log_document_events": true,
    "log_admin_events": true,
    "log_vote_events": true,
    "log_file_events": true,
    "log_artifact_events": true,
    "log_ai_operations": true,
    "log_tool_invocations": true,
    "log_code_execution": true
  },
  "performance_settings": {
    "batch_writes": true,
    "batch_size": 100,
    "batch_interval_ms": 5000,
    "async_logging": true,
    "sampling_enabled": false,
    "sampling_rate": 1.0
  },
  "privacy_settings": {
    "anonymize_ip": false,
    "hash_email": false,
    "log_user_agent": true,
    "exclude_sensitive_paths": ["/api/auth/callback"]
  }
}')
on conflict (config_key) do nothing;

-- Agent configurations: the provider-independent part of each agent, then
-- per provider whether it is enabled and its rate limits.
with agent (agent_type, body) as (values
  ('chat_model_agent', '{
    "systemPrompt": "You are a helpful AI assistant. Be clear, accurate and friendly. Use providerToolsAgent for web search, URL analysis and code execution; documentAgent to create, update or revert documents and spreadsheets; pythonAgent for Python code artifacts; mermaidAgent for diagrams; gitMcpAgent for every GitHub question. Extract document ids from the artifact context, never guess them.",
    "capabilities": {"fileInput": true},
    "fileInputTypes": {
      "codeFiles": {"py": {"enabled": true}, "ipynb": {"enabled": true}, "js": {"enabled": true}, "ts": {"enabled": true}, "html": {"enabled": true}, "css": {"enabled": true}, "json": {"enabled": true}, "sql": {"enabled": true}},
      "textFiles": {"txt": {"enabled": true}, "md": {"enabled": true}, "yaml": {"enabled": true}, "csv": {"enabled": true}},
      "pdf": {"enabled": true},
      "images": {"enabled": true}
    },
    "tools": {
      "providerToolsAgent": {"description": "Web search, URL content analysis and code execution", "enabled": true},
      "documentAgent": {"description": "Create, update and revert text documents and spreadsheets", "enabled": true},
      "pythonAgent": {"description": "Create, update, fix, explain and revert Python code", "enabled": true},
      "mermaidAgent": {"description": "Create, update, fix and revert Mermaid diagrams", "enabled": true},
      "gitMcpAgent": {"description": "All GitHub operations through the GitHub MCP server", "enabled": true}
    }
  }'::jsonb),
  ('provider_tools_agent', '{
    "systemPrompt": "You are a specialized agent for external services. Use search for current information, analyze web content from URLs and execute code safely. Provide accurate, well-structured answers.",
    "tools": {
      "googleSearch": {"description": "Search the web for current information", "enabled": true},
      "urlContext": {"description": "Fetch and analyze the content of web pages", "enabled": true},
      "codeExecution": {"description": "Run code in a sandbox", "enabled": true}
    }
  }'::jsonb),
  ('document_agent', '{
    "tools": {
      "create": {"description": "Create a new document", "enabled": true,
        "systemPrompt": "Write a well-structured markdown document.", "userPromptTemplate": "Create a document: {instruction}"},
      "update": {"description": "Update an existing document", "enabled": true,
        "systemPrompt": "Revise the document as instructed, keeping what is not asked to change.", "userPromptTemplate": "Current document:\n{currentContent}\n\nChange: {instruction}"},
      "suggestion": {"description": "Suggest inline edits", "enabled": true,
        "systemPrompt": "Suggest concise improvements to the document.", "userPromptTemplate": "Suggest improvements for:\n{currentContent}"},
      "revert": {"description": "Restore a previous version", "enabled": true}
    }
  }'::jsonb),
  ('python_agent', '{
    "tools": {
      "create": {"description": "Create a Python code artifact", "enabled": true},
      "update": {"description": "Modify existing Python code", "enabled": true},
      "fix": {"description": "Fix errors in Python code", "enabled": true},
      "explain": {"description": "Add comments and documentation to Python code", "enabled": true},
      "generate": {"description": "Generate Python code for the chat, without an artifact", "enabled": true},
      "revert": {"description": "Restore a previous version", "enabled": true}
    }
  }'::jsonb),
  ('mermaid_agent', '{
    "tools": {
      "create": {"description": "Create a Mermaid diagram artifact", "enabled": true},
      "update": {"description": "Modify an existing diagram", "enabled": true},
      "fix": {"description": "Fix Mermaid syntax errors", "enabled": true},
      "generate": {"description": "Generate Mermaid code for the chat, without an artifact", "enabled": true},
      "revert": {"description": "Restore a previous version", "enabled": true}
    }
  }'::jsonb),
  ('git_mcp_agent', '{
    "systemPrompt": "You are a GitHub integration agent. Always pass every required parameter (owner, repo, path, q) to each tool call; if one is missing, say what is missing instead of calling the tool.",
    "tools": {
      "repos": {"description": "Browse code, repository info, contents and files", "enabled": true},
      "issues": {"description": "List, search and read issues", "enabled": true},
      "pull_requests": {"description": "List pull requests, read details and changes", "enabled": true},
      "users": {"description": "User info, repositories and contributions", "enabled": true},
      "code_search": {"description": "Search code for patterns, functions and references", "enabled": true},
      "branches": {"description": "List branches, read commits, compare branches", "enabled": true}
    }
  }'::jsonb)
),
limits (provider, agent_type, enabled, per_minute, per_hour, per_day) as (values
  ('google',    'chat_model_agent',     true,  10, 100, 1000),
  ('google',    'provider_tools_agent', true,   8,  80,  500),
  ('google',    'document_agent',       true,   5,  50,  200),
  ('google',    'python_agent',         true,   5,  50,  200),
  ('google',    'mermaid_agent',        true,   3,  25,  100),
  ('google',    'git_mcp_agent',        true,   5,  50,  200),
  ('openai',    'chat_model_agent',     false,  5,  50,  200),
  ('openai',    'provider_tools_agent', false,  4,  40,  150),
  ('openai',    'document_agent',       false,  3,  30,  100),
  ('openai',    'python_agent',         false,  2,  20,   80),
  ('openai',    'mermaid_agent',        false,  2,  15,   60),
  ('openai',    'git_mcp_agent',        false,  1,  10,   40),
  ('anthropic', 'chat_model_agent',     false,  4,  40,  150),
  ('anthropic', 'provider_tools_agent', false,  3,  30,  100),
  ('anthropic', 'document_agent',       false,  2,  20,   80),
  ('anthropic', 'python_agent',         false,  2,  15,   60),
  ('anthropic', 'mermaid_agent',        false,  1,  10,   40),
  ('anthropic', 'git_mcp_agent',        false,  1,   8,   30)
)
insert into public.admin_config (config_key, config_data)
select l.agent_type || '_' || l.provider,
       jsonb_build_object(
         'enabled', l.enabled,
         'rateLimit', jsonb_build_object('perMinute', l.per_minute, 'perHour', l.per_hour, 'perDay', l.per_day)
       ) || a.body
  from limits l
  join agent a using (agent_type)
 order by l.provider, l.agent_type
on conflict (config_key) do nothing;

-- Existing model_ids are skipped before the insert rather than by ON
-- CONFLICT alone: the one-default-per-provider trigger runs before the
-- conflict is detected, and re-inserting a default would demote whatever
-- default an admin has chosen since.
insert into public.model_config
  (model_id, name, description, provider, is_active, is_default, thinking_enabled,
   input_pricing_per_million_tokens, output_pricing_per_million_tokens, metadata)
select v.*
  from (values
    ('gemini-2.0-flash', 'Gemini 2.0 Flash', 'Fast, efficient model for most tasks',
     'google', true, true, true, 0.0750, 0.3000, '{"contextWindow": 1048576, "maxOutputTokens": 8192}'::jsonb),
    ('gemini-2.5-flash', 'Gemini 2.5 Flash', 'Enhanced flash model with better performance',
     'google', true, false, true, 0.0750, 0.3000, '{"contextWindow": 1048576, "maxOutputTokens": 8192}'::jsonb),
    ('gemini-2.5-pro', 'Gemini 2.5 Pro', 'Most capable Gemini model for complex tasks',
     'google', true, false, true, 1.2500, 5.0000, '{"contextWindow": 2097152, "maxOutputTokens": 8192}'::jsonb),
    ('gemma-3', 'Gemma 3', 'Open model for basic tasks',
     'google', false, false, false, 0.0500, 0.2000, '{"contextWindow": 8192, "maxOutputTokens": 2048}'::jsonb),
    ('gpt-4o', 'GPT-4o', 'Most capable GPT-4 model',
     'openai', true, true, true, 2.5000, 10.0000, '{"contextWindow": 128000, "maxOutputTokens": 4096}'::jsonb),
    ('gpt-4o-mini', 'GPT-4o Mini', 'Faster, more affordable GPT-4',
     'openai', true, false, true, 0.1500, 0.6000, '{"contextWindow": 128000, "maxOutputTokens": 4096}'::jsonb),
    ('gpt-4-turbo', 'GPT-4 Turbo', 'Previous generation GPT-4',
     'openai', false, false, false, 10.0000, 30.0000, '{"contextWindow": 128000, "maxOutputTokens": 4096}'::jsonb),
    ('claude-3-5-sonnet-20241022', 'Claude 3.5 Sonnet', 'Most capable Claude 3.5 model',
     'anthropic', true, true, true, 3.0000, 15.0000, '{"contextWindow": 200000, "maxOutputTokens": 8192}'::jsonb),
    ('claude-3-5-haiku-20241022', 'Claude 3.5 Haiku', 'Fast and efficient Claude model',
     'anthropic', true, false, true, 0.2500, 1.2500, '{"contextWindow": 200000, "maxOutputTokens": 8192}'::jsonb),
    ('claude-3-opus-20240229', 'Claude 3 Opus', 'Previous generation flagship model',
     'anthropic', false, false, false, 15.0000, 75.0000, '{"contextWindow": 200000, "maxOutputTokens": 4096}'::jsonb)
  ) as v (model_id, name, description, provider, is_active, is_default, thinking_enabled,
          input_pricing_per_million_tokens, output_pricing_per_million_tokens, metadata)
 where not exists (select 1 from public.model_config m where m.model_id = v.model_id)
on conflict (model_id) do nothing;
