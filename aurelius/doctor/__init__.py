"""`aurelius doctor`: a read-only preflight of one environment, link by link.

    aurelius doctor --environment ENV [--settings FILE] [--json]
    python -m aurelius.doctor --environment ENV [--settings FILE] [--json]

Run it before the first deploy (it names the first missing link and the command that makes
it) and after (it checks that the pieces point at each other). The links follow the order of
the first deploy (README, "Deploying on a real AWS account"): credentials, cluster, trigger
stack and its functions, model bucket, image, model object, service stack, the role
CloudFormation uses for it, and what the function and service roles may do.

Nothing here changes anything: every call is a Describe/Get/Head/List or
iam:SimulatePrincipalPolicy. Statuses:

- ok: checked and right.
- fail: checked and wrong; ``fix`` says the command that repairs it.
- error: could not be checked (access denied, endpoint down); ``detail`` names the call.
- skipped: does not apply here, or needs a link that is missing, or the caller may not ask.
- not checkable here: the endpoint is a simulator (moto) that cannot answer this question
  truthfully (capacity providers, IAM policy simulation). Never counted as a pass.

Exit 0 when nothing failed or errored, 1 otherwise, 2 bad arguments or settings.

Layout: check.py (a check's result and statuses), links.py (one check per link), iam.py (what
the roles must be allowed, and the simulation), chain.py (the links in order), report.py (text
and JSON). The command itself is aurelius/cli/commands/doctor.py.
"""
