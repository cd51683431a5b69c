"""The back office's web console (docs/console.md): server-rendered pages in zh-CN for
HQ, regions and store managers, a client of the gateway only, calling it with the
signed-in person's session."""
