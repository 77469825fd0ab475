-- Promote the waiting candidate (greenlight.dev/promote=true).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["greenlight.dev/promote"] = "true"
return obj
