"""One module per CLI command group; heavy imports stay inside the command bodies."""
