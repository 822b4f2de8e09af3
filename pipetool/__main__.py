"""`python -m pipetool` is the `pipetool` command."""
from .cli import main

main()
