"""interp stage."""
