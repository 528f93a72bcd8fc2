"""Built-in anchorvoice plugins, registered through the `anchorvoice` entry-point group."""
