"""Channel adapters: one Notifier per provider API."""
