// The server's public HTTP API, as any client uses it: the API key (when the server has keys) goes in an
// Authorization header, so files are fetched as blobs and progress is read with a streaming fetch (a
// browser's EventSource cannot send headers).
"use strict";

window.ditto = window.ditto || {};

(function (ditto) {
  const KEY_ITEM = "ditto-api-key";

  class ApiError extends Error {
    constructor(status, error) {
      super(error.message || `HTTP ${status}`);
      this.status = status;
      this.param = error.param || null;
      this.code = error.code || null;
    }
  }

  const api = {
    key: sessionStorage.getItem(KEY_ITEM) || "",
    onUnauthorized: null, // set by app.js: shows the key form

    setKey(key) {
      this.key = key;
      sessionStorage.setItem(KEY_ITEM, key);
    },

    headers(extra) {
      const headers = new Headers(extra || {});
      if (this.key) headers.set("Authorization", `Bearer ${this.key}`);
      return headers;
    },

    async fetch(path, options = {}) {
      const response = await fetch(path, { ...options, headers: this.headers(options.headers) });
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized();
      return response;
    },

    // JSON answer, or an ApiError carrying the server's own message, field and code.
    async json(path, options = {}) {
      const response = await this.fetch(path, options);
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new ApiError(response.status, body.error || { message: response.statusText });
      return body;
    },

    post(path, body, requestId) {
      const headers = { "X-Request-Id": requestId };
      if (!(body instanceof FormData)) headers["Content-Type"] = "application/json";
      const payload = body instanceof FormData ? body : JSON.stringify(body);
      return this.json(path, { method: "POST", headers, body: payload });
    },

    // A file of the API (an output or a preview) as an object URL the page can show and download.
    async blobUrl(path) {
      const response = await this.fetch(path);
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new ApiError(response.status, body.error || { message: response.statusText });
      }
      return URL.createObjectURL(await response.blob());
    },

    // Server-Sent Events of one job (GET /v1/jobs/{id}/events) read from a streaming fetch: calls
    // onJob(job) for each change; resolves when the stream ends (the job finished, or the stream broke).
    async stream(jobId, onJob, signal) {
      const response = await this.fetch(`/v1/jobs/${jobId}/events`, { signal });
      if (!response.ok || !response.body) throw new ApiError(response.status, { message: "no event stream" });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event.type === "job") onJob(JSON.parse(event.data));
          if (event.type === "gone") return;
        }
      }
    },
  };

  function parseEvent(text) {
    const event = { type: "message", data: "" };
    for (const line of text.split("\n")) {
      if (line.startsWith("event:")) event.type = line.slice(6).trim();
      else if (line.startsWith("data:")) event.data += line.slice(5).trim();
    }
    return event;
  }

  ditto.ApiError = ApiError;
  ditto.api = api;
})(window.ditto);
