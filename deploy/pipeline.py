"""The main job (placeholder until the pipeline module lands)."""


def run() -> None:
    """Run the whole pipeline on the local stack and print a report."""
