"""The shared sink framework: decode, dead-letter, write durably, then commit (see README.md)."""
