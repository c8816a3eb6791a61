"""The job store alone: what survives a restart, and what a restart does to unfinished jobs."""

from __future__ import annotations

from ditto.server.retention import Purger, Retention
from ditto.server.store import Job, JobStore, new_job_id


def make_job(store: JobStore, kind: str = "video", **fields) -> Job:
    job = Job(id=new_job_id(kind), kind=kind, model="m", prompt="p", params={"prompt": "p"}, **fields)
    return store.add(job)


def test_recover_requeues_running_videos_until_their_tries_are_spent(tmp_path):
    store = JobStore(tmp_path)
    done = make_job(store, status="completed", progress=100, outputs=["x/video.mp4"])
    running = make_job(store, status="in_progress", progress=40, attempts=1)
    spent = make_job(store, status="in_progress", progress=40, attempts=2)
    queued = make_job(store)
    queued_image = make_job(store, kind="image")
    running_image = make_job(store, kind="image", status="in_progress", attempts=1)
    store.close()  # as if the process died: nothing else is written

    store = JobStore(tmp_path)
    requeued = store.recover(max_attempts=2)
    assert [job.id for job in requeued] == [running.id, queued.id]  # arrival order
    assert store.get(running.id).status == "queued" and store.get(running.id).attempts == 1
    assert store.get(done.id).status == "completed" and store.get(done.id).outputs == ["x/video.mp4"]
    for job_id in (spent.id, queued_image.id, running_image.id):
        job = store.get(job_id)
        assert job.status == "failed" and job.error["code"] == "interrupted"
    assert "2 time(s)" in store.get(spent.id).error["message"]
    assert store.counts() == {"queued": 2, "in_progress": 0, "completed": 1, "failed": 3}


def test_orphan_parts_are_removed(tmp_path):
    store = JobStore(tmp_path)
    (store.outputs_dir / "video_x").mkdir()
    (store.outputs_dir / "video_x" / "video.mp4.part").write_bytes(b"half")
    (store.outputs_dir / "video_x" / "keep.mp4").write_bytes(b"whole")
    assert [p.name for p in store.remove_orphan_parts()] == ["video.mp4.part"]
    assert [p.name for p in (store.outputs_dir / "video_x").iterdir()] == ["keep.mp4"]


def test_retention_by_age_and_size(tmp_path):
    store = JobStore(tmp_path)
    jobs = []
    for index in range(4):
        job = make_job(store, status="completed", completed_at=1000.0 + index, stored_bytes=100)
        (store.outputs_dir / job.id).mkdir()
        jobs.append(job)
    purger = Purger(store, Retention(max_age_s=50.0, max_bytes=150))
    purger.hold(jobs[3].id)
    assert purger.run(now=1051.5) == 3  # jobs 0 and 1 by age; then 2 by size (3 is held)
    assert [store.get(job.id).purged_at is not None for job in jobs] == [True, True, True, False]
    assert not (store.outputs_dir / jobs[0].id).exists() and (store.outputs_dir / jobs[3].id).exists()
    assert store.bytes_stored() == 100


def test_an_old_database_gains_the_new_columns(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "jobs.sqlite3")
    db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, "
               "status TEXT NOT NULL, progress INTEGER NOT NULL DEFAULT 0, model TEXT NOT NULL, prompt TEXT, "
               "params TEXT NOT NULL, meta TEXT NOT NULL, outputs TEXT NOT NULL DEFAULT '[]', error TEXT, "
               "timings TEXT NOT NULL DEFAULT '{}', request_id TEXT, created_at REAL NOT NULL, "
               "started_at REAL, completed_at REAL)")  # fmt: skip
    db.execute("INSERT INTO jobs (id, seq, kind, status, model, params, meta, created_at) "
               "VALUES ('video_old', 1, 'video', 'completed', 'm', '{}', '{}', 1.0)")  # fmt: skip
    db.commit()
    db.close()
    job = JobStore(tmp_path).get("video_old")
    assert (job.owner, job.attempts, job.purged_at, job.stored_bytes) == ("", 0, None, 0)


def test_list_pages_in_arrival_order(tmp_path):
    store = JobStore(tmp_path)
    ids = [make_job(store).id for _ in range(5)]
    make_job(store, kind="image")
    assert [job.id for job in store.list("video", limit=2)] == ids[::-1][:2]
    assert [job.id for job in store.list("video", after=ids[3], limit=10)] == ids[:3][::-1]
    assert [job.id for job in store.list("video", after=ids[1], descending=False)] == ids[2:]
    assert store.list("video", owner="someone else") == []
    assert len(store.list(None)) == 6


def test_update_and_delete(tmp_path):
    store = JobStore(tmp_path)
    job = make_job(store)
    (store.outputs_dir / job.id).mkdir()
    assert store.update(job.id, progress=50, meta={"size": "64x32"})
    assert store.get(job.id).meta == {"size": "64x32"}
    assert store.delete(job.id)
    assert store.get(job.id) is None and not (store.outputs_dir / job.id).exists()
    assert not store.update(job.id, progress=60)
