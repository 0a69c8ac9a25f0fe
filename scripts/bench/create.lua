-- wrk script: POST a new customer with a userId no other request uses
-- BENCH_PATH: /api/customers (Administrator token in BENCH_AUTH) or
-- /api/customers/internal/create (service key in BENCH_KEY)
local path = os.getenv("BENCH_PATH") or "/api/customers"
local headers = { ["Content-Type"] = "application/json" }
if (os.getenv("BENCH_KEY") or "") ~= "" then
    headers["X-Service-API-Key"] = os.getenv("BENCH_KEY")
else
    headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_AUTH") or "")
end

local counter = 0
local prefix

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
end

function init(args)
    prefix = string.format("bcreate-%d-%d-%d-", os.time(), tid or 0,
                           math.random(1e9))
end

local n = 0

function request()
    n = n + 1
    local u = prefix .. n
    return wrk.format("POST", path, headers, string.format(
        '{"userId":"%s","email":"%s@example.com","fullName":"Bench Create",'
        .. '"contactNumber":"+919876543210"}', u, u))
end
