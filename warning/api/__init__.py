"""The HTTP API: feeds in, alerts out, acknowledgements, provider callbacks."""
