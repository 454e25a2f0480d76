-- wrk: signInEmail of one seeded user (every success creates a session; one argon2 verify each).
dofile(os.getenv("APEXKIT_BENCH_DIR") .. "/common.lua")

function init(args)
  failed = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"query":"mutation { signInEmail(input: {email: \\"bench@example.com\\", password: \\"quiet harbor lantern 42\\"}) { token } }"}'
end
