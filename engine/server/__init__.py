"""WebSocket control API: protocol (sans-I/O), auth, events, methods/controller, server glue."""
