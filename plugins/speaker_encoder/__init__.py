"""Built-in plugin ``speaker-encoder``: a packaged speaker encoder's embedding of every voice with a reference."""
