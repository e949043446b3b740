"""Traces in real SQLite: saved whole, found by id, kept across a reopen."""

from server.trace_store import TraceStore


def test_trace_round_trips_and_survives_reopen(tmp_path):
    path = tmp_path / "traces.sqlite3"
    store = TraceStore(path)
    tree = {"root": {"children": [{"text": "50-25=25 (4,7,25)", "score": 0.9}]}}
    trace_id = store.save("countdown", "beam", tree)
    store.close()
    again = TraceStore(path)
    loaded = again.load(trace_id)
    assert loaded is not None
    assert (loaded["model"], loaded["strategy"], loaded["tree"]) == ("countdown", "beam", tree)
    assert again.load("trace-missing") is None
    again.close()


def test_ids_are_unique(tmp_path):
    store = TraceStore(tmp_path / "t.sqlite3")
    ids = {store.save("m", "greedy", {"i": i}) for i in range(20)}
    assert len(ids) == 20
    store.close()
