// What the form shows for the chosen LTX-2 pipeline, from GET /v1/fields alone: that pipeline's defaults and
// size presets (`pipelines`, computed by the server from the family's own defaults) and only the fields it
// takes (each field's `pipelines` in the field table; none listed: every pipeline). A family without a
// `pipeline` field has one set of defaults and every field shown.
"use strict";

window.ditto = window.ditto || {};

(function (ditto) {
  class PipelineView {
    constructor(form) {
      this.form = form;
      this.info = form.info;
      this.forms = form.info.pipelines || {};
    }

    // The chosen pipeline; the select's "default" option is the checkpoint's own (defaults.pipeline).
    current() {
      const select = this.form.inputs.get("pipeline");
      return (select && select.value) || this.info.defaults.pipeline || null;
    }

    defaults() {
      const chosen = this.forms[this.current()];
      return { ...this.form.baseDefaults, ...(chosen ? chosen.defaults : {}) };
    }

    sizePresets() {
      const chosen = this.forms[this.current()];
      return (chosen && chosen.size_presets) || this.info.size_presets || [];
    }

    takes(name) {
      const field = this.form.fields.get(name);
      const pipeline = this.current();
      return !field || !field.pipelines || !field.pipelines.length || !pipeline || field.pipelines.includes(pipeline);
    }

    // Show the chosen pipeline's fields and put its defaults in every field the user has not set. A value
    // the user typed (or a reused job's) is kept, even one this pipeline may refuse: the page checks no
    // value, and a clear error from the server (naming the field) on submit is better than silently
    // losing what the user typed. A field the pipeline does not take is hidden and disabled, so it is not
    // sent; it comes back as it was when a pipeline that takes it is chosen again.
    apply() {
      const defaults = this.defaults();
      for (const [name, input] of this.form.inputs) {
        const target = input.valueInput || input;
        this.show(name, target, this.takes(name));
        if (name === "pipeline" || name === "prompt" || target.type === "file" || this.userSet(name, target)) continue;
        setDefault(target, name, defaults[name]);
      }
      this.form.setSizePresets(this.sizePresets());
      this.form.suggestFrames(); // the keyframes' spread follows this pipeline's frame count
      for (const group of this.form.groups) {
        const shown = [...group.fieldset.querySelectorAll(".field, .note")].some((node) => !hiddenWithin(node, group.fieldset));
        group.outer.hidden = !shown;
      }
    }

    // The size is one value: a width the user typed keeps the height beside it, and the other way round.
    userSet(name, target) {
      if (name !== "width" && name !== "height") return Boolean(target.dataset.edited);
      return ["width", "height"].some((side) => this.form.inputs.get(side).dataset.edited);
    }

    show(name, target, shown) {
      const wrapper = name === "width" || name === "height" ? target.closest(".size") : target.closest(".field");
      if (wrapper) wrapper.hidden = !shown;
      target.disabled = !shown;
    }
  }

  // Whether node, or an element between it and `top`, is hidden (the panel around the form may be, too).
  function hiddenWithin(node, top) {
    for (let at = node; at && at !== top; at = at.parentElement) if (at.hidden) return true;
    return false;
  }

  // A long default (LTX-2's official negative prompt) is shown as the placeholder, not as text to edit.
  function setDefault(target, name, value) {
    const known = value !== undefined && value !== null;
    if (name === "negative_prompt") {
      target.placeholder = known ? value : "";
      target.value = "";
    } else {
      target.value = known ? value : "";
    }
  }

  // Evenly spaced keyframes for `count` images over `frames` frames: "0,120" for two images in 121 frames.
  function spreadFrames(count, frames) {
    if (count < 2 || !(frames >= count)) return "";
    const last = frames - 1;
    return Array.from({ length: count }, (_, k) => Math.round((k * last) / (count - 1))).join(",");
  }

  ditto.PipelineView = PipelineView;
  ditto.spreadFrames = spreadFrames;
})(window.ditto);
