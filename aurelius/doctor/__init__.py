"""`aurelius doctor`: a read-only preflight of one environment, link by link.

    aurelius doctor --environment ENV [--settings FILE] [--json]
    python -m aurelius.doctor --environment ENV [--settings FILE] [--json]

Run it before the first deploy (it names the first missing link and the command that makes
it) and after (it checks that the pieces point at each other). The links follow the order of
the first deploy (README, "Deploying on a real AWS account"): credentials, cluster, trigger
stack and its functions, model bucket, image, model object, service stack and the role
CloudFormation uses for it, whether the newest and deployed model versions are signed, where
the tasks run (one VPC with the container instances, a way out of their subnets, room in the
cluster's Auto Scaling group), the deployment alarms, what the function and service roles may
do, and the service-linked roles a first deploy creates.

Nothing here changes anything: every call is a Describe/Get/Head/List or
iam:SimulatePrincipalPolicy. Statuses:

- ok: checked and right.
- fail: checked and wrong; ``fix`` says the command that repairs it.
- error: could not be checked (access denied, endpoint down); ``detail`` names the call.
- warning: checked, nothing broken, but the next rollout is less safe (a deployment alarm
  already in ALARM, which ECS ignores when a deployment starts); ``fix`` says what to look at.
- skipped: does not apply here, or needs a link that is missing, or the caller may not ask.
- not checkable here: the endpoint is a simulator (moto) that cannot answer this question
  truthfully (capacity providers, IAM policy simulation). Never counted as a pass.

Exit 0 when nothing failed or errored (warnings included), 1 otherwise, 2 bad arguments or settings.

Layout: check.py (a check's result and statuses), links.py (one check per link), infra.py (the
links around the service: one VPC, egress of the task subnets, room in the cluster, deployment
alarms, service-linked roles), iam.py (what the roles must be allowed, and the simulation),
chain.py (the links in order), report.py (text and JSON). The command itself is aurelius/cli/commands/doctor.py.
"""
