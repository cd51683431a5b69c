"""The `huiyuan` command: the local launcher (`huiyuan up`), migrations, the demo
chain, and the tools of a till and a back office. It may import the services and the
gateway; they never import it."""
