import pytest

from yaguar.protocol import ProtocolError, topics


@pytest.mark.parametrize("device_id", ["cam-01", "a", "0", "x" * 63, "rio-claro-3"])
def test_valid_device_ids(device_id: str) -> None:
    assert topics.topic(device_id, "frame") == f"yaguar/v1/{device_id}/frame"


@pytest.mark.parametrize("device_id", ["", "-cam", "Cam", "../x", "a/b", "+", "#", "x" * 64, "cam_1", "cám"])
def test_invalid_device_ids_are_refused(device_id: str) -> None:
    with pytest.raises(ProtocolError) as info:
        topics.topic(device_id, "frame")
    assert info.value.reason == "bad_device_id"


def test_parse_round_trip_and_errors() -> None:
    assert topics.parse("yaguar/v1/cam-1/heartbeat") == ("cam-1", topics.Kind.HEARTBEAT)
    for bad, reason in [
        ("yaguar/v2/cam-1/frame", "bad_topic"),
        ("yaguar/v1/cam-1/frame/extra", "bad_topic"),
        ("yaguar/v1/../frame", "bad_device_id"),
        ("yaguar/v1/cam-1/selfie", "bad_topic"),
    ]:
        with pytest.raises(ProtocolError) as info:
            topics.parse(bad)
        assert info.value.reason == reason, bad


def test_shared_subscription_filter() -> None:
    assert topics.shared("frame") == "$share/yaguar/yaguar/v1/+/frame"
