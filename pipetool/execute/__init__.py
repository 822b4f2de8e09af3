"""Running targets: the scheduler (ready queue, -j) over a small executor interface."""
