-- wrk: the `session` query as a signed-in client. Tokens come from the file named by
-- APEXKIT_BENCH_TOKENS (a Lua chunk returning a list), one per wrk thread.
dofile(os.getenv("APEXKIT_BENCH_DIR") .. "/common.lua")
local tokens = dofile(os.getenv("APEXKIT_BENCH_TOKENS"))

function init(args)
  failed = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. tokens[(id % #tokens) + 1]
  wrk.body = '{"query":"{ session { session { id expiresAt } user { id email } } }"}'
end

-- A token the server does not know answers `"session":null` without errors: a failure here.
function response(status, headers, body)
  if body:find('"session":null', 1, true) then
    failed = failed + 1
  else
    count_response(status, body)
  end
end
