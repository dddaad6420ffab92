"""CAP 1.1 / 1.2: safe parsing, validation (official XSD + semantics), the model, rendering."""
