// The gallery: one card per job of this key (GET /v1/jobs), newest first. A running card follows its job's
// event stream (falling back to polling once a second): step k of n, elapsed, ETA, seconds per stage and the
// latest latent preview; a finished one shows its video (with sound) or images, its timings, download links,
// "use these settings again", and while it runs, cancel.
"use strict";

window.ditto = window.ditto || {};

(function (ditto) {
  const { api, element } = ditto;
  const FINISHED = ["completed", "failed"];
  const POLL_MS = 1000;
  const HIDDEN_PARAMS = new Set(["prompt"]);

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function seconds(value) {
    if (value === null || value === undefined) return "…";
    if (value < 10) return `${value.toFixed(value < 1 ? 2 : 1)} s`;
    if (value < 120) return `${Math.round(value)} s`;
    return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
  }

  function stageList(stages) {
    return Object.entries(stages || {}).map(([stage, value]) => element("li", { text: `${stage} ${seconds(value)}` }));
  }

  class Card {
    constructor(job, gallery) {
      this.gallery = gallery;
      this.id = job.id;
      this.previewStep = null;
      this.mediaShown = false;
      this.status = element("span", { class: "status" });
      this.progress = element("progress", { max: 1, value: 0, "aria-label": `Progress of job ${job.id}` });
      this.progressText = element("p", { class: "progress-text", "aria-live": "polite" });
      this.progressBox = element("div", { class: "progress", hidden: true }, [this.progress, this.progressText]);
      this.media = element("div", { class: "media" });
      this.stages = element("ul", { class: "stages", "aria-label": "Seconds per stage" });
      this.error = element("p", { class: "card-error", role: "alert", hidden: true });
      this.params = element("ul", { class: "params", "aria-label": "Parameters" });
      this.cancelButton = element("button", { type: "button", class: "cancel", text: "Cancel" });
      this.reuseButton = element("button", { type: "button", class: "reuse", text: "Use these settings again" });
      this.downloads = element("span", { class: "downloads" });
      this.cancelButton.addEventListener("click", () => this.cancel());
      this.reuseButton.addEventListener("click", () => gallery.reuse(this.job));
      const created = new Date(job.created_at * 1000).toLocaleTimeString();
      this.node = element("li", { class: "card", "data-job": job.id }, [
        element("div", { class: "card-head" }, [this.status, element("time", { text: created }), element("code", { text: job.id.slice(0, 14) })]),
        element("p", { class: "prompt", text: job.prompt || "" }),
        this.media,
        this.progressBox,
        this.stages,
        this.error,
        this.params,
        element("div", { class: "card-actions" }, [this.reuseButton, this.cancelButton, this.downloads]),
      ]);
      this.update(job);
    }

    update(job) {
      this.job = job;
      const cancelled = job.status === "failed" && job.error && job.error.code === "cancelled";
      const shown = cancelled ? "cancelled" : job.status.replace("_", " ");
      this.node.dataset.status = cancelled ? "cancelled" : job.status;
      this.status.textContent = shown;
      this.status.dataset.status = this.node.dataset.status;
      this.cancelButton.hidden = FINISHED.includes(job.status);
      this.showParams(job);
      if (job.status === "queued") this.showQueued(job);
      if (job.status === "in_progress") this.showLive(job);
      if (job.status === "completed") this.showCompleted(job);
      if (job.status === "failed") this.showFailed(job);
    }

    showParams(job) {
      const entries = Object.entries(job.params || {}).filter(([name]) => !HIDDEN_PARAMS.has(name));
      if (job.meta && job.meta.preview_every) entries.push(["preview_every", job.meta.preview_every]);
      if (job.meta && job.meta.size_requested) entries.push(["size asked", job.meta.size_requested]);
      this.params.replaceChildren(...entries.map(([name, value]) => {
        const label = ditto.LABELS[name] || name.replace(/_/g, " ");
        const text = typeof value === "string" && value.length > 60 ? `${value.slice(0, 57)}…` : String(value);
        return element("li", { title: String(value) }, [element("span", { class: "key", text: label }), ` ${text}`]);
      }));
    }

    showQueued(job) {
      this.progressBox.hidden = false;
      this.progress.removeAttribute("value");
      const ahead = job.queue_position;
      this.progressText.textContent = ahead ? `Queued: ${ahead} job(s) ahead` : "Queued: runs next";
    }

    showLive(job) {
      const live = job.live;
      this.progressBox.hidden = false;
      if (!live || !live.total) {
        this.progress.removeAttribute("value");
        this.progressText.textContent = `Starting: ${live ? live.stage : "loading"}…`;
      } else {
        this.progress.max = live.total;
        this.progress.value = live.step;
        const eta = live.eta_s === null || live.eta_s === undefined ? "…" : seconds(live.eta_s);
        const stageSteps = live.stage_total !== live.total ? ` (${live.stage}: ${live.stage_step} of ${live.stage_total})` : "";
        this.progressText.textContent =
          `${live.stage}: step ${live.step} of ${live.total}${stageSteps} · ${seconds(live.elapsed_s)} elapsed · ETA ${eta}`;
      }
      this.stages.replaceChildren(...stageList(live && live.stages));
      const preview = live && live.preview;
      if (preview && preview.step && preview.step !== this.previewStep) this.loadPreview(preview);
    }

    async loadPreview(preview) {
      this.previewStep = preview.step;
      try {
        const url = await api.blobUrl(`/v1/jobs/${this.id}/preview`);
        if (this.mediaShown) return URL.revokeObjectURL(url);
        let image = this.media.querySelector("img.preview");
        if (!image) {
          image = element("img", { class: "preview" });
          this.media.replaceChildren(image, element("p", { class: "caption" }));
        }
        const old = image.src;
        image.src = url;
        image.alt = `Preview of the latents at step ${preview.step}`;
        const cost = preview.mean_ms === null ? "" : ` · ${preview.mean_ms.toFixed(1)} ms per preview`;
        this.media.querySelector(".caption").textContent = `Preview at step ${preview.step}${cost}`;
        if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      } catch (error) {
        // The job moved on (finished) before the preview was read: the result replaces it anyway.
      }
    }

    showCompleted(job) {
      this.progressBox.hidden = true;
      this.stages.replaceChildren(...stageList(job.timings));
      if (!this.mediaShown && job.content.length) {
        this.mediaShown = true;
        this.loadMedia(job);
      }
      if (job.purged) this.showError("The files were deleted by the server's retention policy.");
    }

    async loadMedia(job) {
      try {
        const urls = await Promise.all(job.content.map((path) => api.blobUrl(path)));
        const video = job.kind === "video";
        const items = urls.map((url, index) => video
          ? element("video", { src: url, controls: true, preload: "metadata", playsinline: true, "aria-label": `Video: ${job.prompt}` })
          : element("img", { src: url, class: "result", alt: `Image ${index + 1}: ${job.prompt}` }));
        this.media.replaceChildren(...items);
        this.downloads.replaceChildren(...urls.map((url, index) => {
          const name = video ? `${job.id}.mp4` : `${job.id}-${index}.png`;
          const text = video ? "Download MP4" : `Download PNG${urls.length > 1 ? ` ${index + 1}` : ""}`;
          return element("a", { href: url, download: name, class: "download", text });
        }));
      } catch (error) {
        this.showError(`Could not load the result: ${error.message}`);
      }
    }

    showFailed(job) {
      this.progressBox.hidden = true;
      const error = job.error || {};
      this.showError(error.message || "failed");
      if (!this.mediaShown) this.media.replaceChildren();
    }

    showError(message) {
      this.error.textContent = message;
      this.error.hidden = false;
    }

    async cancel() {
      this.cancelButton.disabled = true;
      try {
        this.update(await api.json(`/v1/jobs/${this.id}/cancel`, { method: "POST" }));
      } catch (error) {
        this.showError(error.message);
      } finally {
        this.cancelButton.disabled = false;
      }
    }
  }

  class Gallery {
    constructor(list, empty, form) {
      this.list = list;
      this.empty = empty;
      this.form = form;
      this.cards = new Map();
      this.following = new Set();
    }

    async load() {
      const page = await api.json("/v1/jobs?limit=20");
      for (const job of page.data.reverse()) this.show(job);
    }

    show(job) {
      let card = this.cards.get(job.id);
      if (card) card.update(job);
      else {
        card = new Card(job, this);
        this.cards.set(job.id, card);
        this.list.prepend(card.node);
        this.empty.hidden = true;
      }
      if (!FINISHED.includes(job.status)) this.follow(job.id);
      return card;
    }

    // The job's event stream until it ends; then (or if the stream breaks) GET once a second until finished.
    async follow(id) {
      if (this.following.has(id)) return;
      this.following.add(id);
      try {
        await api.stream(id, (job) => this.show(job));
      } catch (error) {
        // no stream (a proxy that buffers, a dropped connection): polling below
      }
      for (;;) {
        const job = await api.json(`/v1/jobs/${id}`).catch(() => null);
        if (!job) break;
        this.cards.get(id)?.update(job);
        if (FINISHED.includes(job.status)) break;
        await sleep(POLL_MS);
      }
      this.following.delete(id);
    }

    reuse(job) {
      this.form.fill(job);
      document.getElementById("compose").scrollIntoView({ behavior: "smooth", block: "start" });
    }
  }

  ditto.Gallery = Gallery;
  ditto.sleep = sleep;
})(window.ditto);
