"""Applications: what decides what happens to legs (dial an extension, transfer, ...)."""
