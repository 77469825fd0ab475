-- Go back to the previous revision (greenlight.dev/undo with an empty value).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["greenlight.dev/undo"] = ""
return obj
