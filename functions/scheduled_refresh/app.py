"""EventBridge schedule tick, or a status change of the service stack -> reconcile.

The schedule repairs missed S3 events; the status change deploys a version uploaded while
an update was running as soon as the stack is free. FORCE_REFRESH makes schedule ticks (never
status changes, which would loop) start a fresh deployment even when the version is deployed.
"""

from aurelius.core.events import RejectedEvent, refresh_wakeup
from aurelius.core.lambda_runtime import Runtime, logger, metrics

runtime = Runtime()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event, context):
    try:
        wakeup = refresh_wakeup(event, runtime.config.stack_name)
    except RejectedEvent as exc:
        return runtime.reject(str(exc))
    logger.info("woken", extra={"detail": wakeup.detail})
    return runtime.reconcile(trigger=wakeup.trigger, refresh=wakeup.refresh_allowed and runtime.config.force_refresh)
