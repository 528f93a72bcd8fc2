"""DSP voice conversion (pitch + formant shift), the embedded default converter."""
