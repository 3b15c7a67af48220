"""`python -m aurelius.doctor ARGS`: the same as `aurelius doctor ARGS`."""

import sys

from aurelius.cli import main

sys.exit(main(["doctor", *sys.argv[1:]]))
