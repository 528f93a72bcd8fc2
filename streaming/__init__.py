"""Real-time primitives with no I/O, plus thin audio device backends and the virtual microphone."""
