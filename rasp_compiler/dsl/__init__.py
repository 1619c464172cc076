"""dsl stage."""
