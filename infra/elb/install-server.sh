#!/usr/bin/env bash
# Installs the aurelius model server as the systemd service aurelius-model-server on an EC2
# instance (the no-Docker path behind the classic load balancer).
#
# Run as root by the launch template's user data, from the bundle directory (/opt/aurelius),
# which holds this script, aurelius-model-server.service and server/ (aurelius_server/,
# requirements.txt and model-requirements.txt). Environment:
#   MODEL_S3_URI      required  s3://bucket/key of the model
#   MODEL_VERSION_ID  required  the S3 VersionId to serve (the server never loads "latest")
#   SERVER_PORT       optional  default 8080; 1024-65535 (the service has no capabilities)
#   AWS_REGION        optional  handed to the service when set
#   MODEL_FORMAT, MODEL_SKOPS_TRUSTED_TYPES, MODEL_PICKLE_SCAN, MODEL_SIGNING_REQUIRED
#                     optional  handed to the service when set (server/README.md)
#   MODEL_SIGNING_TRUST optional  the trust JSON (keys, certificates or a Sigstore identity);
#                     written to $TRUST_FILE (0640, root:aurelius) and named by
#                     MODEL_SIGNING_TRUST_FILE: a systemd environment file cannot hold its quotes
#   PYTHON            optional  interpreter for the venv, default python3.11 (installed with
#                               dnf or apt-get when missing)
#   MODEL_REQUIREMENTS optional  the model's libraries (exact pins), default the bundle's
#                               server/model-requirements.txt
#   DESTDIR           optional  install under this root instead of / (packaging and tests)
# pip must reach PyPI (or PIP_INDEX_URL) to install the pinned boto3 and gunicorn, and the
# model's libraries, into the venv (one resolve: a conflicting pin fails the install).
# The server runs one gunicorn worker per core of the instance (WORKERS in the environment
# file overrides; see server/README.md).
#
# Re-running is safe: it stops the service, rebuilds the venv and the code, rewrites the
# environment file and the unit, and starts the service again.
set -euo pipefail

readonly SERVICE=aurelius-model-server
readonly SERVICE_USER=aurelius
readonly INSTALL_DIR=/opt/aurelius-model-server      # the unit's WorkingDirectory and ExecStart
readonly ENV_FILE=/etc/aurelius/model-server.env     # the unit's EnvironmentFile
readonly UNIT_FILE=/etc/systemd/system/$SERVICE.service
readonly TRUST_FILE=/etc/aurelius/signing-trust.json   # MODEL_SIGNING_TRUST, for the server
BUNDLE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly BUNDLE_DIR
readonly DESTDIR=${DESTDIR:-}
PYTHON=${PYTHON:-python3.11}
MODEL_REQUIREMENTS=${MODEL_REQUIREMENTS:-$BUNDLE_DIR/server/model-requirements.txt}

log() { printf 'install-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A value for a systemd EnvironmentFile, inside double quotes: refuse what would need escaping.
check_env_value() {
    local name=$1 value=$2
    case $value in
        *'"'* | *\\* | *'$'* | *'`'* | *$'\n'*)
            die "$name contains a quote, backslash, dollar, backtick or newline: not supported" ;;
    esac
}

[[ $(id -u) -eq 0 ]] || die "run as root"

[[ -n ${MODEL_S3_URI:-} ]] || die "MODEL_S3_URI is not set (s3://bucket/key)"
[[ $MODEL_S3_URI == s3://?*/?* ]] || die "MODEL_S3_URI '$MODEL_S3_URI' is not s3://bucket/key"
[[ -n ${MODEL_VERSION_ID:-} ]] || die "MODEL_VERSION_ID is not set (the S3 VersionId to serve)"
SERVER_PORT=${SERVER_PORT:-8080}
if ! [[ $SERVER_PORT =~ ^[0-9]{1,5}$ ]] || ((SERVER_PORT < 1024 || SERVER_PORT > 65535)); then
    die "SERVER_PORT '$SERVER_PORT' is not a port in 1024-65535"
fi
check_env_value MODEL_S3_URI "$MODEL_S3_URI"
check_env_value MODEL_VERSION_ID "$MODEL_VERSION_ID"
check_env_value AWS_REGION "${AWS_REGION:-}"
readonly MODEL_VARIABLES=(MODEL_FORMAT MODEL_SKOPS_TRUSTED_TYPES MODEL_PICKLE_SCAN MODEL_SIGNING_REQUIRED)
for name in "${MODEL_VARIABLES[@]}"; do
    check_env_value "$name" "${!name:-}"
done
[[ ${MODEL_SIGNING_TRUST:-} != *$'\n'* ]] || die "MODEL_SIGNING_TRUST contains a newline: expected compact JSON"

for needed in server/aurelius_server/__main__.py server/requirements.txt "$SERVICE.service"; do
    [[ -f $BUNDLE_DIR/$needed ]] || die "the bundle $BUNDLE_DIR has no $needed"
done
[[ -f $MODEL_REQUIREMENTS ]] || die "MODEL_REQUIREMENTS '$MODEL_REQUIREMENTS' is not a file (the model's libraries)"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    [[ $PYTHON == python3.11 ]] || die "PYTHON '$PYTHON' not found"
    log "installing python3.11"
    if command -v dnf >/dev/null 2>&1; then
        dnf install -y python3.11
    elif command -v apt-get >/dev/null 2>&1; then
        apt-get update && apt-get install -y python3.11 python3.11-venv
    fi
    command -v "$PYTHON" >/dev/null 2>&1 || die "python3.11 is not installed and could not be installed"
fi

if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    log "creating system user $SERVICE_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /sbin/nologin "$SERVICE_USER"
fi

if systemctl is-active --quiet "$SERVICE"; then
    log "stopping the running $SERVICE before replacing its files"
    systemctl stop "$SERVICE"
fi

# Code and venv: owned by root, readable by the service user, not writable by it.
log "installing the server and a venv with boto3, gunicorn and $MODEL_REQUIREMENTS into $INSTALL_DIR"
rm -rf "$DESTDIR$INSTALL_DIR"
install -d -m 0755 "$DESTDIR$INSTALL_DIR" "$DESTDIR$INSTALL_DIR/app"
"$PYTHON" -m venv "$DESTDIR$INSTALL_DIR/venv"
"$DESTDIR$INSTALL_DIR/venv/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
    -r "$BUNDLE_DIR/server/requirements.txt" -r "$MODEL_REQUIREMENTS"
cp -R "$BUNDLE_DIR/server/aurelius_server" "$DESTDIR$INSTALL_DIR/app/"
find "$DESTDIR$INSTALL_DIR/app" -name __pycache__ -prune -exec rm -rf {} +
"$DESTDIR$INSTALL_DIR/venv/bin/python" -m compileall -q "$DESTDIR$INSTALL_DIR/app"
chmod -R u=rwX,go=rX "$DESTDIR$INSTALL_DIR"

log "writing $ENV_FILE"
install -d -m 0750 "$DESTDIR$(dirname "$ENV_FILE")"
chown "root:$SERVICE_USER" "$DESTDIR$(dirname "$ENV_FILE")"
env_tmp=$(mktemp "$DESTDIR$(dirname "$ENV_FILE")/.model-server.env.XXXXXX")
{
    printf '# Written by install-server.sh; read by %s.service.\n' "$SERVICE"
    printf 'MODEL_S3_URI="%s"\n' "$MODEL_S3_URI"
    printf 'MODEL_VERSION_ID="%s"\n' "$MODEL_VERSION_ID"
    printf 'PORT=%s\n' "$SERVER_PORT"
    printf 'HOST=0.0.0.0\n'
    printf 'PYTHONPATH=%s/app\n' "$INSTALL_DIR"
    printf 'PYTHONDONTWRITEBYTECODE=1\n'
    printf 'PYTHONUNBUFFERED=1\n'
    if [[ -n ${AWS_REGION:-} ]]; then
        printf 'AWS_REGION="%s"\n' "$AWS_REGION"
    fi
    for name in "${MODEL_VARIABLES[@]}"; do
        if [[ -n ${!name:-} ]]; then
            printf '%s="%s"\n' "$name" "${!name}"
        fi
    done
    if [[ -n ${MODEL_SIGNING_TRUST:-} ]]; then
        printf 'MODEL_SIGNING_TRUST_FILE=%s\n' "$TRUST_FILE"
    fi
} >"$env_tmp"
chmod 0640 "$env_tmp"
chown "root:$SERVICE_USER" "$env_tmp"
mv -f "$env_tmp" "$DESTDIR$ENV_FILE"

rm -f "$DESTDIR$TRUST_FILE"
if [[ -n ${MODEL_SIGNING_TRUST:-} ]]; then
    log "writing $TRUST_FILE (the model signing trust)"
    trust_tmp=$(mktemp "$DESTDIR$(dirname "$TRUST_FILE")/.signing-trust.json.XXXXXX")
    printf '%s\n' "$MODEL_SIGNING_TRUST" >"$trust_tmp"
    chmod 0640 "$trust_tmp"
    chown "root:$SERVICE_USER" "$trust_tmp"
    mv -f "$trust_tmp" "$DESTDIR$TRUST_FILE"
fi

log "installing $UNIT_FILE"
install -d -m 0755 "$DESTDIR$(dirname "$UNIT_FILE")"
install -m 0644 "$BUNDLE_DIR/$SERVICE.service" "$DESTDIR$UNIT_FILE"

systemctl daemon-reload
systemctl enable "$SERVICE"
systemctl restart "$SERVICE"
log "started $SERVICE on port $SERVER_PORT for $MODEL_S3_URI version $MODEL_VERSION_ID; the load balancer's health check (GET /health) marks it in service once the model is loaded"
