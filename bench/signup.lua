-- wrk: signUpEmail with a fresh address per request (one argon2 hash and one transaction each).
dofile(os.getenv("APEXKIT_BENCH_DIR") .. "/common.lua")
local run = tostring(os.time()) .. tostring(math.random(1000000))

function init(args)
  failed = 0
  n = 0
end

function request()
  n = n + 1
  local body = string.format(
    '{"query":"mutation { signUpEmail(input: {name: \\"Bench\\", email: \\"u%s-%d-%d@example.com\\", password: \\"quiet harbor lantern 42\\"}) { token } }"}',
    run, id, n)
  return wrk.format("POST", "/graphql", json_headers(), body)
end
