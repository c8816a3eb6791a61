"""The job store alone: what survives a restart, and what a restart does to unfinished jobs."""

from __future__ import annotations

from ditto.server.store import Job, JobStore, new_job_id


def make_job(store: JobStore, kind: str = "video", **fields) -> Job:
    job = Job(id=new_job_id(kind), kind=kind, model="m", prompt="p", params={"prompt": "p"}, **fields)
    return store.add(job)


def test_recover_fails_running_and_requeues_queued_videos(tmp_path):
    store = JobStore(tmp_path)
    done = make_job(store, status="completed", progress=100, outputs=["x/video.mp4"])
    running = make_job(store, status="in_progress", progress=40)
    queued = make_job(store)
    queued_image = make_job(store, kind="image")
    store.close()  # as if the process died: nothing else is written

    store = JobStore(tmp_path)
    requeued = store.recover()
    assert [job.id for job in requeued] == [queued.id]
    assert store.get(done.id).status == "completed" and store.get(done.id).outputs == ["x/video.mp4"]
    for job_id in (running.id, queued_image.id):
        job = store.get(job_id)
        assert job.status == "failed" and job.error["code"] == "interrupted"
        assert "interrupted" in job.error["message"]
    assert store.counts() == {"queued": 1, "in_progress": 0, "completed": 1, "failed": 2}


def test_list_pages_in_arrival_order(tmp_path):
    store = JobStore(tmp_path)
    ids = [make_job(store).id for _ in range(5)]
    make_job(store, kind="image")
    assert [job.id for job in store.list("video", limit=2)] == ids[::-1][:2]
    assert [job.id for job in store.list("video", after=ids[3], limit=10)] == ids[:3][::-1]
    assert [job.id for job in store.list("video", after=ids[1], descending=False)] == ids[2:]


def test_update_and_delete(tmp_path):
    store = JobStore(tmp_path)
    job = make_job(store)
    (store.outputs_dir / job.id).mkdir()
    assert store.update(job.id, progress=50, meta={"size": "64x32"})
    assert store.get(job.id).meta == {"size": "64x32"}
    assert store.delete(job.id)
    assert store.get(job.id) is None and not (store.outputs_dir / job.id).exists()
    assert not store.update(job.id, progress=60)
