// The job form, drawn from GET /v1/fields: the served family's fields, their defaults for this checkpoint,
// the sizes it can make and the server's limits; for LTX-2, those of the chosen pipeline (pipeline.js).
// Values are checked by the server, never here: a refused value comes back as the server's own message
// (field, value, a valid value) shown beside its input.
"use strict";

window.ditto = window.ditto || {};

(function (ditto) {
  const LABELS = {
    prompt: "Prompt",
    negative_prompt: "Negative prompt",
    num_frames: "Frames (8k+1)",
    frame_rate: "Frames per second",
    num_inference_steps: "Steps",
    guidance_scale: "Guidance scale",
    true_cfg_scale: "True CFG scale",
    stg_scale: "STG scale",
    modality_scale: "Modality scale",
    guidance_rescale: "Guidance rescale",
    audio_guidance_scale: "Audio guidance scale",
    audio_stg_scale: "Audio STG scale",
    audio_modality_scale: "Audio modality scale",
    audio_guidance_rescale: "Audio guidance rescale",
    num_images_per_prompt: "Images",
    seed: "Seed",
    cache: "Step cache",
    pipeline: "Pipeline",
    image_frames: "Keyframe frames (one per image, in order)",
    sampler: "Sampler",
    image_crf: "Image CRF",
    image_conditioning: "Image conditioning",
    stg_rule: "STG rule",
    skip_step: "Skip step",
    audio_skip_step: "Audio skip step",
    preview_every: "Preview every N steps",
    // The official LTX-2 pipelines' inputs (issue 23), labelled here once they reach the table.
    reference_video: "Control video (ic-lora)",
    reference_strength: "Control strength (ic-lora)",
    reference_downscale_factor: "Control downscale factor (ic-lora)",
    video: "Source video (retake)",
    start_time: "Window start, s (retake)",
    end_time: "Window end, s (retake)",
    regenerate: "Regenerate (retake)",
    audio: "Sound (audio-to-video)",
    audio_start_time: "Sound start, s (audio-to-video)",
    audio_max_duration: "Sound length, s (audio-to-video)",
  };
  // Fieldsets in order; a field the table has that no group names goes to "More". Collapsed ones start shut.
  const GROUPS = [
    { title: "Prompt", names: ["prompt", "negative_prompt"] },
    { title: "Size and length", names: ["size", "num_frames", "frame_rate", "num_images_per_prompt"] },
    { title: "Sampling", names: ["num_inference_steps", "seed", "pipeline", "sampler", "cache", "lora"] },
    { title: "Guidance", names: ["guidance_scale", "true_cfg_scale", "stg_scale", "modality_scale", "guidance_rescale"] },
    { title: "Image", names: ["image", "image_frames", "image_crf", "image_conditioning"] },
    {
      title: "Input files", uploads: true, // the table's file fields (api "upload": a video, a sound), then:
      names: ["reference_strength", "reference_downscale_factor", "start_time", "end_time", "regenerate",
        "audio_start_time", "audio_max_duration"],
    },
    { title: "Preview while it runs", names: ["preview_every"] },
    {
      title: "Audio guidance and more", collapsed: true,
      names: ["audio_guidance_scale", "audio_stg_scale", "audio_modality_scale", "audio_guidance_rescale"],
    },
  ];
  const CACHE_PRESETS = ["none", "slow", "medium", "fast", "ultra", "dbcache", "mask:compute=0-7+12"];
  const DEFAULT_PREVIEW_EVERY = 2;
  // Server spellings of a field -> the engine keyword (the name of the field in the table).
  const SERVER_ALIASES = { fps: "frame_rate", n: "num_images_per_prompt", input_reference: "image", size: "width" };

  function element(tag, attributes = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  class JobForm {
    constructor(form, container, info) {
      this.form = form;
      this.info = info;
      this.kind = info.output_kind;
      this.baseDefaults = { ...info.defaults, preview_every: info.preview_every || DEFAULT_PREVIEW_EVERY };
      this.fields = new Map(info.fields.map((field) => [field.name, field]));
      this.fields.set("preview_every", { name: "preview_every", type: "int", choices: [], api_names: ["preview_every"],
        help: "a cheap preview of the latents (one pixel per latent cell) every N steps; 0: none" });
      this.inputs = new Map(); // field name -> input (size: width and height)
      this.groups = []; // {outer, fieldset}: a group with no field shown for the pipeline is hidden
      this.view = new ditto.PipelineView(this);
      this.build(container);
      this.view.apply();
    }

    // The defaults of the chosen pipeline (of the checkpoint, for a family without pipelines).
    get defaults() {
      return this.view.defaults();
    }

    build(container) {
      container.replaceChildren();
      const placed = new Set();
      const uploads = [...this.fields.values()].filter(isUpload).map((field) => field.name);
      for (const group of GROUPS) {
        const names = [...(group.uploads ? uploads : []), ...group.names.filter((name) => this.has(name))];
        if (!names.length) continue;
        names.forEach((name) => placed.add(name));
        container.append(this.fieldset(group.title, names, group.collapsed));
      }
      const rest = [...this.fields.keys()].filter((name) => !placed.has(name) && !["width", "height"].includes(name));
      if (rest.length) container.append(this.fieldset("More", rest, true));
      // A value the user set is theirs: a pipeline change keeps it (pipeline.js).
      this.form.addEventListener("input", (event) => (event.target.dataset.edited = "1"));
      this.inputs.get("pipeline")?.addEventListener("change", () => this.view.apply());
      this.keyframes();
      this.form.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          this.form.requestSubmit();
        }
      });
    }

    has(name) {
      if (name === "size") return this.fields.has("width") && this.fields.has("height");
      if (name === "lora") return true;
      return this.fields.has(name);
    }

    fieldset(title, names, collapsed) {
      const fieldset = element("fieldset", {}, [element("legend", { text: title })]);
      for (const name of names) fieldset.append(this.control(name));
      const outer = collapsed ? element("details", { class: "more" }, [element("summary", { text: title }), fieldset]) : fieldset;
      this.groups.push({ outer, fieldset });
      return outer;
    }

    control(name) {
      if (name === "size") return this.sizeControl();
      if (name === "lora") return this.loraNote();
      const field = this.fields.get(name);
      const id = `f-${name}`;
      const input = this.input(field, id);
      this.inputs.set(name, input);
      return this.wrap(id, this.label(field), input, this.help(field));
    }

    label(field) {
      if (field.name === "image") {
        return this.kind === "video" ? "Images to animate (the first frame, or keyframes)" : "Reference images (edits)";
      }
      return LABELS[field.name] || field.name.replace(/_/g, " ");
    }

    help(field) {
      if (field.name === "prompt") return "what to make (required)";
      if (field.name === "image" && this.kind === "video") {
        return "optional: a PNG, JPEG or WebP to start the video from; several: keyframes, at the frames below";
      }
      if (field.name === "image") return "optional: images the edit refers to (the request goes to /v1/images/edits)";
      if (field.name === "image_frames") {
        return "the frame of each image above, in order, e.g. 0,120 (0 to frames − 1); several images are spread over the clip until you type their frames";
      }
      return field.help;
    }

    wrap(id, label, input, help) {
      const helpId = `${id}-help`;
      const errorId = `${id}-error`;
      (input.valueInput || input).setAttribute("aria-describedby", `${helpId} ${errorId}`);
      return element("div", { class: "field" }, [
        element("label", { for: id, text: label }),
        input,
        element("small", { id: helpId, class: "help", text: help || "" }),
        element("p", { id: errorId, class: "field-error", hidden: true }),
      ]);
    }

    input(field, id) {
      const fallback = this.defaults[field.name];
      const name = this.serverName(field);
      if (field.name === "prompt" || field.name === "negative_prompt") {
        const placeholder = field.name === "prompt" ? "a red fox running through fresh snow, golden hour" : fallback;
        const area = element("textarea", { id, name, rows: field.name === "prompt" ? 3 : 2, placeholder });
        if (field.name === "prompt") area.setAttribute("aria-required", "true");
        return area;
      }
      if (field.name === "image") {
        return element("input", { id, name, type: "file", accept: "image/png,image/jpeg,image/webp", multiple: true });
      }
      if (isUpload(field)) return element("input", { id, name, type: "file" }); // the server names what it reads
      if (field.choices.length) {
        // A pipeline this checkpoint cannot run stays in the list, greyed out with the server's reason.
        const off = (field.name === "pipeline" && this.info.unavailable_pipelines) || {};
        const options = field.choices.map((choice) =>
          element("option", { value: choice, text: off[choice] ? `${choice} (${off[choice]})` : choice, disabled: Boolean(off[choice]) }),
        );
        const select = element("select", { id, name }, [element("option", { value: "", text: "default" }), ...options]);
        select.value = fallback ?? "";
        return select;
      }
      if (field.type === "int" || field.type === "float") {
        const input = element("input", { id, name, type: "number", step: field.type === "int" ? 1 : "any", inputmode: "decimal" });
        if (field.name === "seed") input.placeholder = "random";
        if (field.name === "num_images_per_prompt") input.max = this.info.limits.max_images;
        if (field.name === "num_inference_steps") input.max = this.info.limits.max_steps;
        return input; // its value: the pipeline's default (pipeline.js)
      }
      const input = element("input", { id, name, type: "text", autocomplete: "off" });
      if (field.name === "cache") {
        input.setAttribute("list", `${id}-presets`);
        input.placeholder = "none";
        const list = element("datalist", { id: `${id}-presets` }, CACHE_PRESETS.map((value) => element("option", { value })));
        return Object.assign(element("span", { class: "with-list" }, [input, list]), { valueInput: input });
      }
      return input;
    }

    serverName(field) {
      if (field.name === "image") return this.kind === "video" ? "input_reference" : "image";
      return field.api_names.includes(field.name) ? field.name : field.api_names[0];
    }

    sizeControl() {
      this.presets = [];
      const preset = element("select", { id: "f-size-preset", name: "size-preset" });
      const width = element("input", { id: "f-width", name: "width", type: "number", step: 1, min: 1, inputmode: "numeric" });
      const height = element("input", { id: "f-height", name: "height", type: "number", step: 1, min: 1, inputmode: "numeric" });
      this.syncSize = () => {
        const size = `${width.value}x${height.value}`;
        preset.value = this.presets.includes(size) ? size : "custom";
      };
      preset.addEventListener("change", () => {
        if (preset.value === "custom") return;
        [width.value, height.value] = preset.value.split("x");
        width.dataset.edited = height.dataset.edited = "1"; // a size the user chose
      });
      width.addEventListener("input", this.syncSize);
      height.addEventListener("input", this.syncSize);
      this.inputs.set("width", width);
      this.inputs.set("height", height);
      this.sizePreset = preset;
      const help = "sizes this model makes; a custom size it cannot make is snapped to the nearest (the job says so)";
      const wrapper = this.wrap("f-size-preset", "Size preset", preset, help);
      const sides = element("div", { class: "pair" }, [
        this.wrap("f-width", "Width", width, ""),
        this.wrap("f-height", "Height", height, ""),
      ]);
      return element("div", { class: "size" }, [wrapper, sides]);
    }

    // The sizes the chosen pipeline makes (its default size, or one of its default area, first).
    setSizePresets(presets) {
      if (!this.sizePreset) return;
      this.presets = presets;
      this.sizePreset.replaceChildren(
        ...presets.map((size) => element("option", { value: size, text: size.replace("x", " × ") })),
        element("option", { value: "custom", text: "custom" }),
      );
      const width = this.inputs.get("width");
      const height = this.inputs.get("height");
      if (!width.value && !height.value && presets.length) [width.value, height.value] = presets[0].split("x");
      this.syncSize();
    }

    // Several images for a video are keyframes: until the user types their frames, they are spread evenly
    // over the clip (two images in 121 frames: "0,120"), shown in the frames field for the user to change.
    keyframes() {
      const images = this.inputs.get("image");
      if (!images || !this.inputs.has("image_frames")) return;
      images.addEventListener("change", () => this.suggestFrames());
      this.inputs.get("num_frames")?.addEventListener("input", () => this.suggestFrames());
    }

    suggestFrames() {
      const images = this.inputs.get("image");
      const frames = this.inputs.get("image_frames");
      if (!images || !frames || frames.dataset.edited) return;
      const count = Number(this.inputs.get("num_frames")?.value || this.defaults.num_frames);
      frames.value = ditto.spreadFrames(images.files.length, count);
    }

    loraNote() {
      const loras = this.info.loras || [];
      const text = loras.length
        ? `LoRA fused at load by the server: ${loras.join(", ")}. Requests cannot choose another.`
        : "LoRA: none. This server takes no LoRA per request; one is fused at load (ditto serve --lora FILE[:SCALE]).";
      return element("p", { class: "note", id: "lora-note", text });
    }

    // {fields: JSON-ready values (only those that differ from the defaults), files: [[server name, File]]}
    values() {
      const fields = {};
      const files = [];
      const defaults = this.defaults;
      for (const [name, field] of this.fields) {
        if (name === "width" || name === "height") continue;
        const input = this.inputs.get(name);
        const target = input && (input.valueInput || input);
        if (!target || target.disabled) continue; // a field the chosen pipeline does not take
        if (target.type === "file") {
          for (const file of target.files) files.push([target.name, file]);
          continue;
        }
        const text = target.value.trim();
        // The pipeline is compared with the checkpoint's default; every other field with the pipeline's.
        const fallback = name === "pipeline" ? this.baseDefaults.pipeline : defaults[name];
        if (text === "" || (name !== "preview_every" && String(fallback) === text)) continue;
        fields[this.serverName(field)] = typed(field, text);
      }
      if (this.inputs.get("width")?.disabled) return { fields, files };
      const width = this.inputs.get("width")?.value.trim();
      const height = this.inputs.get("height")?.value.trim();
      const asDefault = `${width}x${height}` === `${defaults.width}x${defaults.height}`;
      if (width && height && !asDefault) fields.size = `${width}x${height}`;
      else if (width && !height) fields.width = typed(this.fields.get("width"), width);
      else if (height && !width) fields.height = typed(this.fields.get("height"), height);
      return { fields, files };
    }

    // "Use these settings again": a job's parameters (engine names) back into the form.
    // Its values are kept like typed ones; the fields it left out take its pipeline's defaults.
    fill(job) {
      const params = { ...job.params, ...job.meta, prompt: job.prompt };
      for (const [name, input] of this.inputs) {
        const target = input.valueInput || input;
        if (target.type === "file") continue; // a browser cannot refill a file input
        const value = params[name];
        const given = value !== undefined && value !== null;
        target.value = given ? value : name === "pipeline" ? "" : target.value;
        if (given) target.dataset.edited = "1";
        else delete target.dataset.edited;
      }
      this.view.apply();
      this.clearErrors();
      this.inputs.get("prompt").focus();
    }

    clearErrors() {
      for (const node of this.form.querySelectorAll(".field-error")) node.hidden = true;
      for (const node of this.form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
      document.getElementById("form-error").hidden = true;
    }

    // The server's message beside the field it names (and above the button, for any error).
    showError(error) {
      const summary = document.getElementById("form-error");
      summary.textContent = error.message;
      summary.hidden = false;
      const name = SERVER_ALIASES[error.param] || error.param;
      const input = name && (this.inputs.get(name) || this.inputs.get(this.engineName(name)));
      if (!input) return;
      const target = input.valueInput || input;
      target.setAttribute("aria-invalid", "true");
      const slot = document.getElementById(`${target.id}-error`);
      if (slot) {
        slot.textContent = error.message;
        slot.hidden = false;
      }
      target.focus();
    }

    engineName(serverName) {
      for (const field of this.fields.values()) if (field.api_names.includes(serverName)) return field.name;
      return serverName;
    }
  }

  const isUpload = (field) => field.api === "upload";

  // Text -> the JSON type the field takes; anything that does not parse goes as text, for the server to name.
  function typed(field, text) {
    if (field.type === "int" && /^-?\d+$/.test(text)) return Number(text);
    if (field.type === "float" && text !== "" && Number.isFinite(Number(text))) return Number(text);
    return text;
  }

  ditto.JobForm = JobForm;
  ditto.element = element;
  ditto.LABELS = LABELS;
})(window.ditto);
