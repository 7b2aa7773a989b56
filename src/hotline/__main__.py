"""``python -m hotline``: the same as the ``hotline`` command."""

from hotline.cli import main

main()
