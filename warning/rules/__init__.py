"""Rule packs as data: load with clear errors, evaluate as pure functions."""
