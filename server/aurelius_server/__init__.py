"""aurelius model server: serves one pinned version of a model (pickle, joblib or skops) from S3.

SECURITY: unpickling runs code. Loading a pickle (or a joblib file) executes whatever the pickle says, with the
server's permissions. This server loads only the object named by MODEL_S3_URI at exactly the
S3 version MODEL_VERSION_ID (never "latest"). With MODEL_SIGNING_TRUST it loads only bytes whose
OpenSSF model signature verifies against that trust (``verification``): then only whoever holds
the signing key can run code on the service. Without it, whoever can write to that bucket can.
Every pickle is scanned for dangerous imports before and while it loads (``pickle_scan``).

Configuration (environment; server/README.md has the table):
  MODEL_S3_URI, MODEL_VERSION_ID   required: s3://bucket/key and the S3 VersionId to load
  PORT, HOST                       default 8080, 0.0.0.0 (PORT=0 picks a free port)
  WORKERS                          default one worker per CPU (``cpus``); THREADS is ignored
  KEEPALIVE_SECONDS                default 75 (longer than the load balancer's idle timeout)
  READ_TIMEOUT_SECONDS             default 10; a request must arrive whole within it
  MAX_BODY_BYTES                   default 1048576; larger /predict bodies get 413
  SHUTDOWN_TIMEOUT_SECONDS         default 20; how long SIGTERM waits for requests in flight
  SERVICE_NAME                     default aurelius-model-server (metrics dimension)
  MODEL_DOWNLOAD_DIR               default the system temp directory
  MODEL_FORMAT                     default auto (from the content); pickle, joblib or skops forces one
  MODEL_SKOPS_TRUSTED_TYPES        comma-separated types a skops file may hold beyond skops' defaults
  MODEL_PICKLE_SCAN                default refuse; warn loads a pickle with dangerous imports anyway
  MODEL_SIGNING_TRUST(_FILE)       trusted keys / CA / Sigstore identity (JSON); unset: not checked
  MODEL_SIGNING_REQUIRED           default false; true refuses a model without a trusted signature
  SMOKE_TEST_INSTANCES, SMOKE_TEST_EXPECTED, SMOKE_TEST_TOLERANCE   see ``smoke``

Endpoints (request and response shapes: see ``payload``):
  POST /predict         {"instances": [...]} (rows, named features, scalars) -> {"predictions": [...]}
  POST /predict_proba   same body, when the model has predict_proba; 404 naming its methods otherwise
  GET  /health    200 once the model is loaded and smoke-tested, 503 while loading or stopping
  GET  /version   which model is loaded: URI, version id, sha256, S3 checksum, load time, format

Modules, one idea each:
  config        environment -> Config (and the s3:// URI parser)
  cpus          how many workers: CPU quota of the cgroup, else the cores
  checksum      S3's stored checksum, verified again over the bytes received
  s3_download   HeadObject + ranged download of the pinned version, hashed in the same pass
  formats       pickle, joblib or skops, told apart by content, and deserialised
  signature     OpenSSF model signing: the trust, the sidecar, verify_digest over our own digest
  verification  the verify slot: the signature check before deserialising (model_verified)
  pickle_scan   picklescan before loading, and the guarded unpicklers while loading
  pinned_model  download -> verify slot -> scan -> deserialise: the LoadedModel
  smoke         the smoke test a model passes before it serves
  payload       the /predict request and response contract (KServe/TF-Serving V1)
  metrics       CloudWatch embedded metric format fields for the /predict log line
  wsgi          the WSGI application: routing, JSON errors, request log
  loading_responder  answers 503 on the socket while the model loads
  workers       the gunicorn worker: one event loop per process, predict inline, SIGTERM drain
  http11        HTTP/1.1 on one connection without blocking (httptools): deadlines, limits, WSGI
  balance       spreads connections evenly over the workers (counts in shared memory)
  gunicorn_app  gunicorn in this process on the bound socket, logs through ``logs``
  logs          one JSON object per line on stdout
  app           the process: bind, load, smoke test, fork workers, drain on SIGTERM
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
