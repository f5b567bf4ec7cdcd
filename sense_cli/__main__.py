"""``python -m sense_cli`` is the ``sense`` command."""

from sense_cli import main

main()
