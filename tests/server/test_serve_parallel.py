"""`ditto serve --gpus 2` on the CPU (gloo): one server process, its second rank a spawned process that runs
every request with it; a cancel stops both ranks at the same step; stopping the server stops the rank."""

from __future__ import annotations

import httpx
import pytest

from .helpers import ServeProcess
from .test_api_fake_engine import client
from .test_serve_process import CLEAN_EXIT, VIDEO, wait_done, wait_running

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("parallel") / "data"
    server = ServeProcess("tiny-ltx2", data, "--gpus", "2", "--max-steps", "400")
    yield server.wait(timeout=240)
    code = server.stop(timeout=90)
    log = server.log_path.read_text()
    assert code in CLEAN_EXIT, log[-3000:]
    assert "rank 0 stopped" not in log  # the follower was told to stop; it did not find rank 0 gone


def test_both_ranks_run_jobs_and_a_cancel_stops_them_together(server, tmp_path):
    api = client(server.base_url)
    first = api.videos.create(prompt="a fox", **VIDEO)
    assert wait_done(api, first.id)[-1].status == "completed"
    slow = api.videos.create(
        prompt="slow", size="64x64", extra_body={"num_frames": 9, "num_inference_steps": 400}
    )
    wait_running(api, slow.id, min_progress=10)
    assert api.videos.delete(slow.id).deleted
    # Had the second rank not stopped at the same step, this job's collectives would never pair up.
    after = api.videos.create(prompt="after the cancel", **VIDEO)
    assert wait_done(api, after.id)[-1].status == "completed"
    assert 'outcome="cancelled"} 1' in httpx.get(f"{server.base_url}/metrics").text
