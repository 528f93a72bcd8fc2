"""Shared pieces of the built-in text frontends: v2 symbol table, punctuation, sentence and language splitting."""
