-- Replace the live revision's pods, none unavailable meanwhile (spec.restartAt: now, UTC), as
-- `kubectl greenlight restart`; no new revision.
local os = require("os")
obj.spec.restartAt = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
