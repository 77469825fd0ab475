"""The `kubectl greenlight` commands, one module per group: get (show), control (promote,
abort, retry, undo, pause, resume), status (CI waiting), dashboard (the web UI). Each renders
`cli.view`; `cli.plugin` registers them on the app."""
