"""Which events wake a reconcile, and how the others are rejected (with a reason)."""

import pytest

from aurelius.core.events import RejectedEvent, model_upload_wakeup, refresh_wakeup
from tests.helpers import BUCKET, KEY, SERVICE_STACK, load_event


def test_s3_put_on_the_model_key_wakes_up():
    wakeup = model_upload_wakeup(load_event("s3_put"), BUCKET, KEY)
    assert wakeup.trigger == "s3-notification"
    assert KEY in wakeup.detail


def test_url_encoded_key_with_spaces_and_non_ascii_matches_after_decoding():
    # Given a model key with a space and a non-ASCII letter, URL-encoded as S3 sends it
    event = load_event("s3_put")
    event["Records"][0]["s3"]["object"]["key"] = "models/mod%C3%A8le+final.pkl"
    # When / Then
    assert model_upload_wakeup(event, BUCKET, "models/modèle final.pkl").trigger == "s3-notification"
    with pytest.raises(RejectedEvent):
        model_upload_wakeup(event, BUCKET, "models/mod%C3%A8le+final.pkl")


def test_moto_style_event_with_encoded_slash_and_no_version_matches():
    event = load_event("s3_put")
    obj = event["Records"][0]["s3"]["object"]
    obj["key"] = "models%2Fmodel.pkl"
    del obj["versionId"], obj["sequencer"]
    assert model_upload_wakeup(event, BUCKET, KEY).trigger == "s3-notification"


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda e: e["Records"][0]["s3"]["bucket"].update(name="other-bucket"), "not the model object"),
        (lambda e: e["Records"][0]["s3"]["object"].update(key="models/other.pkl"), "not the model object"),
        (lambda e: e["Records"][0].update(eventName="ObjectRemoved:Delete"), "not an object creation"),
        (lambda e: e.update(Records=[]), "without records"),
        (lambda e: e["Records"][0].pop("s3"), "malformed"),
        (lambda e: e["Records"][0]["s3"].pop("object"), "malformed"),
    ],
)
def test_event_for_another_object_or_malformed_is_rejected_with_reason(mutate, reason):
    event = load_event("s3_put")
    mutate(event)
    with pytest.raises(RejectedEvent, match=reason):
        model_upload_wakeup(event, BUCKET, KEY)


@pytest.mark.parametrize("event", [None, [], "text", 42, {}, {"source": "aws.ec2"}])
def test_non_s3_payload_is_rejected(event):
    with pytest.raises(RejectedEvent):
        model_upload_wakeup(event, BUCKET, KEY)


def test_one_matching_record_among_others_wakes_up_once():
    event = load_event("s3_put")
    other = load_event("s3_put")["Records"][0]
    other["s3"]["object"]["key"] = "models/readme.txt"
    event["Records"].insert(0, other)
    assert model_upload_wakeup(event, BUCKET, KEY).trigger == "s3-notification"


def test_eventbridge_object_created_for_existing_bucket_wakes_up():
    assert model_upload_wakeup(load_event("s3_eventbridge_object_created"), BUCKET, KEY).trigger == "s3-eventbridge"


def test_eventbridge_event_for_another_key_is_rejected():
    event = load_event("s3_eventbridge_object_created")
    event["detail"]["object"]["key"] = "models/other.pkl"
    with pytest.raises(RejectedEvent, match="not the model object"):
        model_upload_wakeup(event, BUCKET, KEY)


def test_eventbridge_object_deleted_is_rejected():
    event = load_event("s3_eventbridge_object_created")
    event["detail-type"] = "Object Deleted"
    with pytest.raises(RejectedEvent, match="Object Created"):
        model_upload_wakeup(event, BUCKET, KEY)


def test_schedule_tick_wakes_up_and_may_refresh():
    wakeup = refresh_wakeup(load_event("schedule"), SERVICE_STACK)
    assert wakeup.trigger == "schedule" and wakeup.refresh_allowed


def test_status_change_of_our_stack_wakes_up_but_never_refreshes():
    # A refresh on a status change would start another update, whose completion would start another
    wakeup = refresh_wakeup(load_event("stack_status_update_complete"), SERVICE_STACK)
    assert wakeup.trigger == "stack-status" and not wakeup.refresh_allowed
    assert "UPDATE_COMPLETE" in wakeup.detail


def test_status_change_of_another_stack_is_rejected():
    with pytest.raises(RejectedEvent, match="not aurelius-service-stack-prod-ml"):
        refresh_wakeup(load_event("stack_status_update_complete"), "aurelius-service-stack-prod-ml")


@pytest.mark.parametrize("event", [None, {}, {"source": "aws.events", "detail-type": "Other"}, load_event("s3_put")])
def test_unexpected_refresh_event_is_rejected(event):
    with pytest.raises(RejectedEvent):
        refresh_wakeup(event, SERVICE_STACK)
