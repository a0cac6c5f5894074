"""Web dashboard and ASGI helpers for Stalwart."""
