"""Ground truth from the client's write log: outage windows and lost acknowledged writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drorch.measure.groundtruth import OutageWindow, WriteRecord, analyse, outages, read_log


def ok(seq: int, sent: float, done: float | None = None, site: str | None = "seoul") -> WriteRecord:
    return WriteRecord(seq, f"run-{seq}", sent, sent + 0.05 if done is None else done, True, site, None)


def fail(seq: int, sent: float, done: float | None = None, error: str = "ConnectionError") -> WriteRecord:
    return WriteRecord(seq, f"run-{seq}", sent, sent + 0.05 if done is None else done, False, None, error)


# --- outages --------------------------------------------------------------------------------------------------


def test_no_failures_no_outage() -> None:
    assert outages([ok(0, 1.0), ok(1, 1.1), ok(2, 1.2)]) == []
    assert outages([]) == []


def test_one_clean_window_from_first_failure_sent_to_next_ack_done() -> None:
    records = [ok(0, 1.0), fail(1, 2.0), fail(2, 2.5), fail(3, 3.0), ok(4, 4.0, done=4.3), ok(5, 5.0)]
    [window] = outages(records)
    assert window == OutageWindow(2.0, 4.3)
    assert window.seconds == pytest.approx(2.3)


def test_records_are_ordered_by_sent_time_not_log_order() -> None:
    # The log is written on completion, so its order is not the send order.
    records = [ok(4, 4.0, done=4.3), fail(3, 3.0), ok(0, 1.0), fail(1, 2.0)]
    assert outages(records) == [OutageWindow(2.0, 4.3)]


def test_overlapping_windows_from_concurrent_writes_merge() -> None:
    records = [
        fail(0, 1.0),
        ok(1, 1.1, done=3.0),  # a slow write that got through: closes the first raw window at 3.0
        fail(2, 1.5),  # ... but this one, sent meanwhile, failed: a second raw window from 1.5
        ok(3, 4.0, done=4.2),
    ]
    assert outages(records) == [OutageWindow(1.0, 4.2)]


def test_a_slow_success_does_not_stretch_the_window() -> None:
    records = [
        fail(0, 1.0),
        ok(1, 1.1, done=9.0),  # sent right after the failure, acknowledged very late
        ok(2, 1.2, done=1.3),  # sent later, acknowledged at once: the client was served again at 1.3
    ]
    assert outages(records) == [OutageWindow(1.0, 1.3)]


def test_touching_windows_merge() -> None:
    records = [fail(0, 1.0), ok(1, 1.1, done=2.0), fail(2, 2.0), ok(3, 3.0, done=3.5)]
    assert outages(records) == [OutageWindow(1.0, 3.5)]


def test_failure_at_the_end_gives_an_open_window() -> None:
    records = [ok(0, 1.0), fail(1, 2.0), fail(2, 3.0)]
    [window] = outages(records)
    assert window == OutageWindow(2.0, None)
    assert window.seconds is None


def test_open_window_overlapping_an_earlier_one_stays_open() -> None:
    records = [fail(0, 1.0), ok(1, 1.1, done=5.0), fail(2, 2.0)]
    assert outages(records) == [OutageWindow(1.0, None)]


def test_two_separate_outages() -> None:
    records = [
        ok(0, 0.0),
        fail(1, 1.0), ok(2, 2.0, done=2.1),
        ok(3, 3.0), ok(4, 4.0),
        fail(5, 5.0), fail(6, 5.5), ok(7, 7.0, done=7.4),
        ok(8, 8.0),
    ]
    windows = outages(records)
    assert windows == [OutageWindow(1.0, 2.1), OutageWindow(5.0, 7.4)]
    assert [w.seconds for w in windows] == [pytest.approx(1.1), pytest.approx(2.4)]


# --- analyse --------------------------------------------------------------------------------------------------


def test_analyse_counts_and_lost_acknowledged_writes() -> None:
    records = [
        ok(0, 1.0, site="seoul"),
        ok(1, 1.1, site="seoul"),  # acknowledged by the old primary, never replicated: lost
        fail(2, 2.0),  # failed and absent: not lost, the client knew
        fail(3, 2.5),  # failed but present (committed, ack lost in transit): not lost either
        ok(4, 4.0, done=4.5, site="tokyo"),
        ok(5, 5.0, site="tokyo"),
        ok(6, 6.0, site=None),  # acknowledged without a site in the body
    ]
    present = {"run-0", "run-3", "run-4", "run-5", "run-6"}

    truth = analyse(records, present)

    assert truth.attempted == 7
    assert truth.acknowledged == 5
    assert truth.failed == 2
    assert truth.lost_refs == ("run-1",)
    assert truth.sites == {"seoul": 2, "tokyo": 2, "?": 1}
    assert truth.outages == (OutageWindow(2.0, 4.5),)
    assert truth.longest_outage_seconds == pytest.approx(2.5)


def test_analyse_nothing_lost_when_every_ack_is_present() -> None:
    records = [ok(0, 1.0), fail(1, 2.0), ok(2, 3.0)]
    truth = analyse(records, {"run-0", "run-2", "unrelated-ref"})
    assert truth.lost_refs == ()
    assert truth.to_json()["lost_acknowledged_writes"] == 0


def test_analyse_everything_lost_when_primary_is_empty() -> None:
    records = [ok(i, float(i), site="seoul") for i in range(3)]
    truth = analyse(records, set())
    assert truth.lost_refs == ("run-0", "run-1", "run-2")
    assert truth.outages == ()
    assert truth.longest_outage_seconds == 0.0


def test_to_json_summary() -> None:
    records = [ok(0, 0.0), fail(1, 1.0), ok(2, 2.0, done=2.25, site="tokyo"), fail(3, 3.0), ok(4, 4.0, done=4.5)]
    lost = [ok(10 + i, 10.0 + i) for i in range(25)]
    doc = analyse(records + lost, {"run-0", "run-2", "run-4"}).to_json()
    assert doc["attempted"] == 30 and doc["acknowledged"] == 28 and doc["failed"] == 2
    assert doc["outage_seconds"] == 1.5
    assert doc["outages"] == [{"start": 1.0, "end": 2.25, "seconds": 1.25}, {"start": 3.0, "end": 4.5, "seconds": 1.5}]
    assert doc["lost_acknowledged_writes"] == 25
    assert doc["lost_refs"] == [f"run-{10 + i}" for i in range(20)]  # capped at 20
    assert doc["acknowledged_by_site"] == {"seoul": 27, "tokyo": 1}
    json.dumps(doc)  # serialisable


def test_longest_outage_of_a_never_recovered_service_is_not_zero() -> None:
    truth = analyse([ok(0, 1.0), fail(1, 2.0), fail(2, 3.0)], {"run-0"})
    assert truth.outages == (OutageWindow(2.0, None),)
    assert truth.longest_outage_seconds != 0.0


# --- read_log -------------------------------------------------------------------------------------------------


def test_read_log_round_trip(tmp_path: Path) -> None:
    lines = [
        {"seq": 2, "client_ref": "ab12-2", "sent": 12.0, "done": 12.2, "ok": True, "site": "tokyo", "id": 7,
         "status": 201, "error": None},
        {"seq": 0, "client_ref": "ab12-0", "sent": 10.0, "done": 10.1, "ok": True, "site": "seoul", "id": 5,
         "status": 201, "error": None},
        {"seq": 1, "client_ref": "ab12-1", "sent": 11.0, "done": 13.0, "ok": False, "site": None,
         "error": "ReadTimeout"},
        {"seq": 3, "client_ref": "ab12-3", "sent": 13.0, "done": 13.1, "ok": False},  # no site/error keys
    ]
    log = tmp_path / "writes.jsonl"
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n   \n", encoding="utf-8")

    records = read_log(log)

    assert records == [
        WriteRecord(0, "ab12-0", 10.0, 10.1, True, "seoul", None),
        WriteRecord(1, "ab12-1", 11.0, 13.0, False, None, "ReadTimeout"),
        WriteRecord(2, "ab12-2", 12.0, 12.2, True, "tokyo", None),
        WriteRecord(3, "ab12-3", 13.0, 13.1, False, None, None),
    ]
    assert outages(records) == [OutageWindow(11.0, 12.2), OutageWindow(13.0, None)]


def test_read_log_empty_file(tmp_path: Path) -> None:
    log = tmp_path / "empty.jsonl"
    log.write_text("")
    assert read_log(log) == []


def test_read_log_rejects_a_torn_line(tmp_path: Path) -> None:
    log = tmp_path / "torn.jsonl"
    log.write_text('{"seq": 0, "client_ref": "a", "sent": 1.0, "done": 1.1, "ok": true}\n{"seq": 1, "cli\n')
    with pytest.raises(json.JSONDecodeError):
        read_log(log)
