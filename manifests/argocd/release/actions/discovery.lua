-- Which Greenlight commands Argo CD offers for this Release, and which are enabled now.
-- The operator refuses a command that does not apply (and says why in an Event); these only grey
-- out buttons that cannot do anything.
local actions = {}
local st = obj.status or {}
local paused = obj.spec ~= nil and obj.spec.paused == true
local inFlight = st.candidateRevision ~= nil and st.candidateHash ~= st.abortedHash
local history = st.history or {}
actions["promote"] = {["disabled"] = not inFlight}
actions["promote-skip-checks"] = {["disabled"] = not inFlight}
actions["abort"] = {["disabled"] = not inFlight}
actions["retry"] = {["disabled"] = st.abortedHash == nil}
actions["undo"] = {["disabled"] = #history < 2}
actions["pause"] = {["disabled"] = paused}
actions["resume"] = {["disabled"] = not paused}
actions["restart"] = {["disabled"] = st.liveRevision == nil}
return actions
