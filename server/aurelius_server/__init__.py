"""aurelius model server: serves one pinned version of a pickled model from S3 over HTTP.

SECURITY: unpickling runs code. Loading a pickle executes whatever the pickle says, with the
server's permissions. This server loads only the object named by MODEL_S3_URI at exactly the
S3 version MODEL_VERSION_ID (never "latest"), but that is a pin, not a sandbox: whoever can
write to that bucket (or that key's versions) can run code on the service. Keep write access
to the model bucket as narrow as the deploy role itself.

Configuration (environment):
  MODEL_S3_URI              required, s3://bucket/key
  MODEL_VERSION_ID          required, the S3 VersionId to load
  PORT                      default 8080 (0 picks a free port)
  HOST                      default 0.0.0.0
  MAX_BODY_BYTES            default 1048576; larger /predict bodies get 413
  SHUTDOWN_TIMEOUT_SECONDS  default 20; how long SIGTERM waits for requests in flight

Endpoints (request and response shapes: see ``payload``):
  POST /predict   {"instances": [[...], ...]} -> {"predictions": [...]}
  GET  /health    200 once the model is loaded, 503 while loading or stopping
  GET  /version   which model is loaded: URI, version id, sha256, S3 checksum, load time

Modules, one idea each:
  config    environment -> Config (and the s3:// URI parser)
  checksum  S3's stored checksum, verified again over the bytes received
  loader    GetObject of the pinned version -> checks -> unpickle -> LoadedModel
  payload   the /predict request and response contract
  handler   HTTP routing, JSON errors, access log
  server    the listening socket, requests in flight, graceful stop
  logs      one JSON object per line on stdout
  app       the process: bind, load, wait for SIGTERM, drain, exit
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
