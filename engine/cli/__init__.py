"""The `anchorvoice` command line: argparse, one module per command group (each has `add_parser`)."""
