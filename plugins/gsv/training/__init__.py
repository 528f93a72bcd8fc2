"""Fine-tuning GPT-SoVITS v2 models: the SoVITS (s2) and GPT (s1) training steps, data and losses."""
