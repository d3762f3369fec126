-- wrk script: POST the JSON body named by BENCH_BODY, with the bearer key in BENCH_KEY (optional).
wrk.method = "POST"
local f = assert(io.open(os.getenv("BENCH_BODY") or "bench/body.json", "rb"))
wrk.body = f:read("*a"):gsub("%s+$", "")
f:close()
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
