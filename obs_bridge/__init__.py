"""obs-websocket v5 and avatar (VTube Studio) bridges."""
