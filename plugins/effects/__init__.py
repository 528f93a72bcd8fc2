"""Block-wise audio effects: gain, noise gate, high-pass, compressor/limiter.

Every effect keeps its state per sample, so a signal processed in one block or in many gives the
same output; parameters are in dB / ms / Hz and turned into coefficients at the frame's rate.
"""
