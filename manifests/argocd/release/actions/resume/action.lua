-- Go on (spec.paused: false).
obj.spec.paused = false
return obj
