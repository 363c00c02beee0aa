-- Starts a chat from the first of the partner's numbers, sends a second message
-- into it, then pages through every chat.
--
--   LINQ_API_V3_API_KEY=... lua5.4 examples/send_message.lua +12025550100   (the real API)
--   make demo                                                               (the local simulator)
local linq = require("linq")

local to = arg[1] or "+12025550100"

local function text(value)
  return { parts = { { type = "text", value = value } } }
end

local function main()
  local client = linq.new()
  local from = client:phone_numbers().phone_numbers[1].phone_number

  -- Sends are safe to retry: each call carries one idempotency key on every attempt.
  local created, meta = client:create_chat{ from = from, to = { to }, message = text("Hello from Lua") }
  local chat_id = created.chat.id
  print(string.format("chat %s created (idempotency key %s)", chat_id, meta.idempotency_key))

  local sent = client:send_message(chat_id, { message = text("A second message") })
  print(string.format("message %s: %s", sent.message.id, sent.message.delivery_status))

  -- each() follows next_cursor page by page; the loop sees one chat at a time.
  local count = 0
  for chat in client:each("list_chats", { limit = 50 }) do
    count = count + 1
    print(string.format("  %s  %s", chat.id, chat.service or "-"))
  end
  print(count .. " chat(s)")
  client:close()
end

local ok, err = pcall(main)
if not ok then
  -- A linq error prints as one line: type, status, code, message and doc_url.
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
