"""craft stage."""
