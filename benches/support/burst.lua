-- wrk script for the notify bench's real-time burst: every connection posts
-- GraphQL to the server, cycling over the accounts, and counts the
-- answers' statuses. Driven by `benches/notify.rs`, which passes, after
-- `--`: the bearer token, the mode (`notify` or `trivial`), the first
-- account id and the number of accounts (counting down from the first).
--
-- Each wrk thread runs this file in a Lua state of its own; `done` reads
-- the threads' counters through `thread:get`.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local bodies = {}
local next_body = 0
sent, throttled, other, answered = 0, 0, 0, 0

function init(args)
  local token, mode, first, count = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
  if mode == "trivial" then
    bodies[1] = '{"query":"{ __typename }"}'
  else
    for i = 0, count - 1 do
      bodies[#bodies + 1] = string.format(
        '{"query":"mutation($a: bigint!) { notifyAccount(account_id: $a) { status } }","variables":{"a":%d}}',
        first - i)
    end
  end
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    other = other + 1
  elseif string.find(body, '"THROTTLED"', 1, true) then
    throttled = throttled + 1
  elseif string.find(body, '"SENT"', 1, true) then
    sent = sent + 1
  elseif string.find(body, '"__typename"', 1, true) and not string.find(body, '"errors"', 1, true) then
    -- the trivial query's answer
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local s, t, o, a = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    t = t + thread:get("throttled")
    o = o + thread:get("other")
    a = a + thread:get("answered")
  end
  local errors = summary.errors
  io.write(string.format(
    "WXNOTIFY answered=%d sent=%d throttled=%d other=%d duration_us=%d socket_errors=%d\n",
    a, s, t, o + errors.connect + errors.read + errors.write + errors.timeout, summary.duration,
    errors.connect + errors.read + errors.write + errors.timeout))
end
