-- Abort the candidate; the live revision stays (greenlight.dev/abort=true).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["greenlight.dev/abort"] = "true"
return obj
