-- Which Greenlight commands Argo CD offers for this ReleaseGroup, and which are enabled now.
-- The operator passes them on to the members (promote/abort: those with a candidate; retry: the
-- failed ones; undo: the previous group entry).
local actions = {}
local st = obj.status or {}
local paused = obj.spec ~= nil and obj.spec.paused == true
local inFlight = false
local failed = false
for _, m in ipairs(st.members or {}) do
  if m.candidateRevision ~= nil then
    inFlight = true
  end
  if m.phase == "Degraded" or m.phase == "Aborted" then
    failed = true
  end
end
local history = st.history or {}
actions["promote"] = {["disabled"] = not inFlight}
actions["promote-skip-checks"] = {["disabled"] = not inFlight}
actions["abort"] = {["disabled"] = not inFlight}
actions["retry"] = {["disabled"] = not failed}
actions["undo"] = {["disabled"] = #history < 2}
actions["pause"] = {["disabled"] = paused}
actions["resume"] = {["disabled"] = not paused}
return actions
