"""`make bench` / `warning bench SCENARIO`: reproducible figures on the real local stack."""
