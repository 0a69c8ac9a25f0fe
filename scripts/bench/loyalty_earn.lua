-- wrk script: POST /api/customers/{id}/loyalty/earn for random customers
-- usage: wrk -t4 -c64 -d30s -s /tmp/bench-loyalty.lua http://127.0.0.1:PORT
local ids_file = os.getenv("BENCH_IDS") or "ids_active.txt"
local auth = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
-- BENCH_NOKEY=1: no Idempotency-Key (a plain write, nothing stored)
local nokey = os.getenv("BENCH_NOKEY") == "1"

local ids = {}
for line in io.lines(ids_file) do
    local id = line:match("^%s*(%S+)%s*$")
    if id then ids[#ids + 1] = id end
end
assert(#ids > 0, "no customer ids in " .. ids_file)

local counter = 0
local prefix

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
end

function init(args)
    math.randomseed(os.time() + (tid or 0) * 7919)
    prefix = string.format("bench-%d-%d-", os.time(), tid or 0)
end

local n = 0
local body = '{"points":10,"reason":"bench"}'

function request()
    n = n + 1
    local id = ids[math.random(#ids)]
    local headers = {
        ["Authorization"] = auth,
        ["Content-Type"] = "application/json",
    }
    if not nokey then
        headers["Idempotency-Key"] = prefix .. n .. "-" .. math.random(1e9)
    end
    return wrk.format("POST", "/api/customers/" .. id .. "/loyalty/earn",
                      headers, body)
end
