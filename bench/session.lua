-- wrk: the `session` query as signed-in clients, selecting what a frontend asks for on every page
-- load. Tokens come from the file named by APEXKIT_BENCH_TOKENS (a Lua chunk returning a list,
-- e.g. 200 distinct sessions); each thread cycles through all of them, starting at its own offset,
-- one prepared request per token.
dofile(os.getenv("APEXKIT_BENCH_DIR") .. "/common.lua")
local tokens = dofile(os.getenv("APEXKIT_BENCH_TOKENS"))
local body = '{"query":"{ session { user { id email name emailVerified image createdAt updatedAt }'
  .. ' session { id expiresAt createdAt } } }"}'

function init(args)
  failed = 0
  requests = {}
  for i = 1, #tokens do
    local token = tokens[((id * 97 + i) % #tokens) + 1]
    requests[i] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
    }, body)
  end
  next_request = 0
end

function request()
  next_request = (next_request % #requests) + 1
  return requests[next_request]
end

-- A token the server does not know answers `"session":null` without errors: a failure here.
function response(status, headers, body)
  if body:find('"session":null', 1, true) then
    failed = failed + 1
  else
    count_response(status, body)
  end
end
