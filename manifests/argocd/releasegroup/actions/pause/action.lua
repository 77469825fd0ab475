-- Hold: no flip, no new slot (spec.paused: true).
obj.spec.paused = true
return obj
