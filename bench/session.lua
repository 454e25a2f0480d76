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
