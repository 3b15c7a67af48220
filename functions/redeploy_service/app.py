"""S3 ObjectCreated on the model key -> reconcile the service stack.

A thin shell: parse the event, call the shared reconcile core, report. The event is only a
wake-up call: the version deployed is whatever HeadObject says is current.
"""

from aurelius.core.events import RejectedEvent, model_upload_wakeup
from aurelius.core.lambda_runtime import Runtime, logger, metrics

runtime = Runtime()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event, context):
    try:
        wakeup = model_upload_wakeup(event, runtime.config.bucket, runtime.config.key)
    except RejectedEvent as exc:
        return runtime.reject(str(exc))
    logger.info("woken", extra={"detail": wakeup.detail})
    return runtime.reconcile(trigger=wakeup.trigger)
