"""Entrypoint: ``python -m schemas.governance {check,register,docs}``."""

from schemas.governance.cli import app

if __name__ == "__main__":
    app()
