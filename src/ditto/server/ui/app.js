// The page's start: the server line (GET /health), the API key when the server asks for one, the form
// (GET /v1/fields), the gallery (GET /v1/jobs), and submitting a job through the OpenAI routes.
"use strict";

window.ditto = window.ditto || {};

(function (ditto) {
  const { api, ApiError, sleep } = ditto;
  const FIRST_LOOKUP_MS = 300; // an image request answers only when done: find its job by request id
  const LOOKUP_MS = 1000;
  let info = null;
  let form = null;
  let gallery = null;

  const byId = (id) => document.getElementById(id);

  async function showServer() {
    try {
      const health = await (await fetch("/health")).json();
      byId("server").textContent =
        `${health.model} · ${health.family} · makes ${health.output_kind}s · ${health.queue_depth} queued`;
    } catch (error) {
      byId("server").textContent = "The server does not answer.";
    }
  }

  function askKey() {
    const panel = byId("key-panel");
    const wasShown = !panel.hidden;
    panel.hidden = false;
    byId("compose").hidden = true;
    byId("jobs").hidden = true;
    const message = byId("key-error");
    message.hidden = !api.key;
    message.textContent = api.key ? "The server refused this key; check it and try again." : "";
    if (!wasShown) byId("api-key").focus();
  }

  async function start() {
    showServer();
    try {
      info = await api.json("/v1/fields");
    } catch (error) {
      if (error.status !== 401) byId("server").textContent = `The server did not describe its fields: ${error.message}`;
      return;
    }
    byId("key-panel").hidden = true;
    if (!form) {
      form = new ditto.JobForm(byId("job-form"), byId("fields"), info);
      gallery = new ditto.Gallery(byId("gallery"), byId("jobs-empty"), form);
      byId("job-form").addEventListener("submit", submit);
    }
    byId("compose").hidden = false;
    byId("jobs").hidden = false;
    await gallery.load().catch((error) => byId("jobs-empty").replaceChildren(`Could not list jobs: ${error.message}`));
  }

  // JSON, or multipart when there are files ([server field name, File] pairs).
  function body(fields, files) {
    if (!files.length) return fields;
    const data = new FormData();
    for (const [name, value] of Object.entries(fields)) data.append(name, String(value));
    for (const [name, file] of files) data.append(name, file);
    return data;
  }

  async function findJob(requestId) {
    const page = await api.json("/v1/jobs?kind=image&limit=10");
    return page.data.find((job) => job.request_id === requestId) || null;
  }

  // Images: the request waits for its job, so the job is found by its request id while it runs.
  async function submitImage(fields, files, requestId, release) {
    const route = files.length ? "/v1/images/edits" : "/v1/images/generations";
    const pending = api.post(route, body({ ...fields, response_format: "url" }, files), requestId);
    let settled = false;
    pending.then(() => (settled = true), () => (settled = true));
    let job = null;
    await sleep(FIRST_LOOKUP_MS);
    while (!job && !settled) {
      job = await findJob(requestId);
      if (!job) await sleep(LOOKUP_MS);
    }
    if (job) {
      gallery.show(job);
      release();
    }
    try {
      await pending;
    } catch (error) {
      job = job || (await findJob(requestId));
      if (!job) throw error; // refused before it was queued: the form shows the server's message
    }
    job = job || (await findJob(requestId));
    if (job) gallery.show(await api.json(`/v1/jobs/${job.id}`));
  }

  async function submit(event) {
    event.preventDefault();
    form.clearErrors();
    const { fields, files } = form.values();
    const requestId = `ui_${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
    const button = byId("submit");
    button.disabled = true;
    const release = () => (button.disabled = false);
    try {
      if (info.output_kind === "video") {
        const video = await api.post("/v1/videos", body(fields, files), requestId);
        gallery.show(await api.json(`/v1/jobs/${video.id}`));
      } else {
        await submitImage(fields, files, requestId, release);
      }
    } catch (error) {
      form.showError(error instanceof ApiError ? error : { message: String(error) });
    } finally {
      release();
    }
  }

  byId("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    api.setKey(byId("api-key").value.trim());
    start();
  });
  api.onUnauthorized = askKey;
  start();
})(window.ditto);
