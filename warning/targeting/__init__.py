"""Who gets an alert: grids, the recipient directory and the audience policy per tier."""
