"""One module per `tdw` command; each defines `register(subparsers)` and `run(args)`."""
