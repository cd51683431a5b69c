"""The huiyuan services, one package each; each runs as its own process."""
