-- Retry the aborted revision (greenlight.dev/retry=true).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["greenlight.dev/retry"] = "true"
return obj
