"""Versioned demo model artifacts and the recipe that builds them bit-identically."""
