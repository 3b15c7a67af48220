"""``python -m aurelius_server``: see ``aurelius_server.app.main``."""

from aurelius_server.app import main

raise SystemExit(main())
