"""The code the Lambda functions run, and nothing else.

Everything under ``aurelius/core`` is shipped in each function's artifact (``functions/*/aurelius``
links here), so it may import only the standard library, boto3/botocore (the Lambda runtime has
them) and aws-lambda-powertools (its public layer). The operator side (CLI, settings, naming,
stack deploys, doctor) and the sandbox import the core, never the other way round.
"""
