# Sourced by run.sh and compare.sh: the load both send.
#
# write_wrk_load WORK PAYLOADS ROOT writes PAYLOADS distinct Segment /v1/batch
# bodies (WORK/body-N.json) and WORK/post.lua, a wrk script sending them in
# turn with Basic auth; the caller appends its own done() to post.lua.
write_wrk_load() {
  local work=$1 payloads=$2 root=$3 auth i
  for ((i = 0; i < payloads; i++)); do
    python3 "$root/bench/collector/make_payload.py" $((7 + i)) > "$work/body-$i.json" 2>/dev/null
  done
  auth=$(printf 'bench:' | base64)
  cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic $auth"
local bodies = {}
for i = 0, $payloads - 1 do
  local f = io.open("$work/body-" .. i .. ".json", "rb")
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
local requests, next_request = {}, 0
init = function(args)
  for i, b in ipairs(bodies) do requests[i] = wrk.format(nil, nil, nil, b) end
  next_request = math.random(#requests) - 1  -- connections of several threads do not move in lockstep
end
request = function()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
LUA
}
