"""`aurelius`: look at the redeploy automation and overrule it.

    aurelius status  [--environment ENV] [--json]
    aurelius deploy  --environment ENV (--version-id V | --latest) [--make-current] [--dry-run] [--wait]
    aurelius publish --environment ENV MODEL [--key KEY.pem | --sigstore] [--wait] [--timeout S]
    aurelius sign    MODEL --key KEY.pem [--signature OUT]      (local only, aurelius.signing_commands)
    aurelius history --environment ENV [--limit N] [--json]
    aurelius doctor  --environment ENV [--json]          (read-only preflight, aurelius.doctor)

Every command reads the service stacks' settings (infra/ecs-service/management-scripts/
service-settings.yml unless --settings) and talks to AWS through plain boto3, so
AWS_ENDPOINT_URL / AWS_PROFILE / AWS_REGION work, and so does the sandbox (`make demo ARGS=--keep`).
An environment's `region` setting wins over the default region.

Nothing here is a second redeployer: `status` is the redeployer's own observe and decide
(aurelius.core.reconcile.observe, aurelius.core.decision.decide), and `deploy` is observe,
decide and act on one observation, with the chosen version and force=True (the same UpdateStack
the functions send, token kind "force", which is how a version's failed mark is cleared).
`history` reads the record the redeployer leaves in AWS (stack events tagged with its request
token, S3 object versions).

Layout: main.py (dispatch and exit codes), parser.py, commands/ (one module per command),
output.py (tables), environments.py (settings and clients); the exit codes are aurelius.exits
(shared with the management scripts, which do not load the CLI).

Exit codes:
  status   0 every environment shown is in sync; 1 any is behind, deploying, failed, missing
           or could not be read (error)
  deploy   0 update started (with --wait: completed), already deployed, or dry run shown;
           1 refused or failed on the AWS side (stack busy, not updatable, missing, rolled back)
  publish  0 uploaded (with --wait: served); 1 skipped by the redeployer, rolled back, cancelled,
           superseded or timed out; (2: bad file or key, nothing uploaded)
  sign     0 signed; 2 bad input
  history  0 shown; 1 AWS-side failure (stack missing, endpoint)
  doctor   0 nothing to fix; 1 something to fix or could not be checked
  all      2 bad arguments or settings: unknown environment, unknown model version
"""

from aurelius.cli.main import main

__all__ = ["main"]
