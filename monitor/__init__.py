"""vqmon: a real-time video stream quality monitor."""

__version__ = "0.1.0"
