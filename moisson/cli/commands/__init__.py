"""One module per `moisson` command (or command group)."""
