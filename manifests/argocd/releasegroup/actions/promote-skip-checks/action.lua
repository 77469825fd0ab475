-- Promote and skip the promotion gates left (greenlight.dev/promote=skip-checks).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["greenlight.dev/promote"] = "skip-checks"
return obj
