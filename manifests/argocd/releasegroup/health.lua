-- Argo CD health of a greenlight.dev ReleaseGroup (resource.customizations.health.greenlight.dev_ReleaseGroup).
-- Healthy: phase Healthy and the operator has seen the current spec (observedGeneration).
hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Greenlight operator to reconcile the ReleaseGroup"
  return hs
end
local st = obj.status
local generation = obj.metadata.generation
if generation ~= nil and (st.observedGeneration == nil or st.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Greenlight operator to observe generation " .. tostring(generation)
  return hs
end
local message = st.message
if message == nil or message == "" then
  message = "phase " .. st.phase
end
if st.phase == "Healthy" then
  hs.status = "Healthy"
elseif st.phase == "Progressing" then
  hs.status = "Progressing"
elseif st.phase == "Paused" then
  hs.status = "Suspended"
elseif st.phase == "Degraded" or st.phase == "Aborted" then
  hs.status = "Degraded"
else
  hs.status = "Unknown"
end
hs.message = message
return hs
