"""Making training sets from a user's recordings: slicing, rejects, transcripts, cached model steps.

Model-agnostic: the model-specific files (features, tokens, tables) come from ``DatasetStep`` plugins.
"""
