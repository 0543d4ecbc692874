"""``python -m drorch.cli`` runs the same command as the ``drorch`` script."""

from drorch.cli.main import main

main()
