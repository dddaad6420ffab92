"""The stages: ingest -> evaluate -> lifecycle -> target -> enqueue, each a thin agent."""
