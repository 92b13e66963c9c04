-- wrk_pipeline.lua - make wrk pipeline HTTP/1.1 requests, as axbench's load
-- generator does with -p pipeline=N: each write carries N copies of the
-- request and wrk waits for the N responses before writing again (wrk
-- counts the requests in the string it is given). N comes from the
-- WRK_PIPELINE environment variable (default 16). Used by
-- tests/e2e/test_wrk.py.
local depth = tonumber(os.getenv("WRK_PIPELINE") or "16")
local batch

init = function(args)
  local one = wrk.format("GET", "/plaintext", { ["Accept"] = "text/plain" })
  batch = string.rep(one, depth)
end

request = function()
  return batch
end
