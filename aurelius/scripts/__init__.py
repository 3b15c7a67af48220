"""Support for the management scripts (infra/*/management-scripts/*.py) and the sandbox that runs
them: change-set stack deploys (stack_deploy), the scripts' shared shell — arguments, settings,
exit codes (management), the elb path's private artifact bucket (buckets) and the ECR
repository's names and push commands (image_repository).

The functions never import this package (they ship aurelius/core only); the operator CLI uses
stack_deploy's change-set preview for `aurelius deploy --dry-run`.
"""
