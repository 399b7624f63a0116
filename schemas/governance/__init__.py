"""Contract governance: offline compatibility and quality checks, registration, generated docs."""
