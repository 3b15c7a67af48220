"""The local sandbox: AWS emulated by moto on 127.0.0.1, the Lambda handlers run in-process."""
