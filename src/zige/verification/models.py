"""Models of the verification app."""
