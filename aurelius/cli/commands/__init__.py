"""The `aurelius` commands, in the order `aurelius --help` lists them.

Each module has ``register(subparsers, common)``, which adds its subcommand and sets ``run``
(``run(args, clients) -> exit code``). A new command is one module here and one line below.
"""

from aurelius import signing_commands as sign
from aurelius.cli.commands import deploy, doctor, history, publish, status

COMMANDS = (status, deploy, publish, sign, history, doctor)
