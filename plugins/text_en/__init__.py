"""English text frontend plugin (CMU dictionary, rule-based fallback, GPT-SoVITS v2 symbols)."""
