// The images mode (ConvNetJS's digit and CIFAR-10 demos): its controls and views. Every picture is a PNG sprite
// the server computed from the estimator (tiles of h x w pixels in rows of `cols`, 1 pixel apart); this file only
// draws them. The socket, counters and curves are app.js's and draw.js's.
"use strict";
(function (PG) {
  const $ = id => document.getElementById(id);
  const LR = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
  const L2 = [0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1];
  const BATCH = [1, 4, 8, 10, 16, 20, 32, 64, 128, 256];
  const im = {rules: null, examples: null, history: [], run: null, filters: null, acts: null, strip: null,
              inspect: 0};

  // Each picture slot draws the newest of its PNGs that has finished decoding, so a canvas never goes blank while
  // the next one decodes (new pictures arrive a few times a second while training).
  const slots = {};
  function shown(key, sp) {
    const s = slots[key] || (slots[key] = {png: null, seq: 0, view: null});
    if (sp && sp.png !== s.png) {
      const seq = ++s.seq, img = new Image();
      s.png = sp.png;
      img.onload = () => { if (!s.view || seq > s.view.seq) { s.view = {sp: sp, img: img, seq: seq}; later(); } };
      img.src = "data:image/png;base64," + sp.png;
    }
    return s.view;
  }
  function tile(ctx, sp, img, i, x, y, scale) {
    const sx = (i % sp.cols) * (sp.w + 1), sy = Math.floor(i / sp.cols) * (sp.h + 1);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, sx, sy, sp.w, sp.h, x, y, sp.w * scale, sp.h * scale);
  }
  function fitScale(sp, target) { return Math.max(1, Math.round(target / Math.max(sp.w, sp.h))); }

  // ---- views ------------------------------------------------------------------------------------------------
  function drawFilters() {
    const c = $("filters"), ctx = c.getContext("2d"), f = im.filters;
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#98a2b3";
    if (!f) { ctx.fillText("press play or step to train", 10, 20); $("filters-caption").textContent = ""; return; }
    const v = shown("filters", f);
    if (!v) return;
    const sp = v.sp, templates = sp.kind === "templates";
    const s = fitScale(sp, templates ? 56 : 40), gap = templates ? 18 : 6;
    const per = Math.max(1, Math.floor((c.width + 6) / (sp.w * s + 6)));
    for (let i = 0; i < sp.n; i++) {
      const x = (i % per) * (sp.w * s + 6), y = Math.floor(i / per) * (sp.h * s + gap);
      tile(ctx, sp, v.img, i, x, y, s);
      if (templates && im.examples) {
        ctx.fillStyle = "#475467"; ctx.fillText(im.examples.classes[i], x, y + sp.h * s + 12);
      }
    }
    $("filters-caption").textContent = (templates ? "one template per class (W_, lecture 2)"
      : `first layer: ${Math.min(sp.n, sp.total)} of ${sp.total} ` +
        (sp.kind === "filters" ? `${sp.w} x ${sp.h} conv filters` : "hidden units' weights")) +
      (sp.gradient ? ": the chosen image's loss gradient" : "");
  }
  function drawActivations() {
    const c = $("activations"), a = im.acts;
    const rows = a ? a.layers.map((layer, k) => shown("act" + k, layer)) : [];
    const scale = l => fitScale(l, l.kind === "maps" ? 40 : 64);
    const per = l => Math.max(1, Math.floor((c.width - 130) / (l.w * scale(l) + 4)));
    const height = rows.reduce((h, v) => h + (v ? Math.max(30, Math.ceil(v.sp.n / per(v.sp)) *
      (v.sp.h * scale(v.sp) + 4)) + 8 : 0), 30) + (a ? 13 * a.probs.length + 10 : 0);
    if (c.height !== Math.max(460, height)) c.height = Math.max(460, height);  // every class's bar fits
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#98a2b3";
    if (!a) { ctx.fillText("press play or step, then click a held-out image", 10, 20); return; }
    let y = 4;
    rows.forEach(v => {
      if (!v) return;
      const l = v.sp, s = scale(l), n = per(l);
      ctx.fillStyle = "#475467";
      ctx.fillText(l.name + (l.size ? ` (${l.size})` : ""), 4, y + 12);
      const what = a.gradients ? "grad" : "value";
      if (l.max !== undefined) ctx.fillText("max |" + what + "| " + l.max.toPrecision(2), 4, y + 26);
      for (let i = 0; i < l.n; i++) {
        tile(ctx, l, v.img, i, 130 + (i % n) * (l.w * s + 4), y + Math.floor(i / n) * (l.h * s + 4), s);
      }
      y += Math.max(30, Math.ceil(l.n / n) * (l.h * s + 4)) + 8;
    });
    const names = im.examples ? im.examples.classes : [];
    ctx.fillStyle = "#475467";
    ctx.fillText("class probabilities (label " + (names[a.label] || a.label) + ")", 4, y + 12);
    y += 18;
    a.probs.forEach((p, k) => {
      ctx.fillStyle = k === a.label ? "#1f9d55" : "#2f6fd6";
      ctx.fillRect(130, y + k * 13, Math.max(1, p * (c.width - 180)), 10);
      ctx.fillStyle = "#475467"; ctx.fillText(names[k] || String(k), 4, y + k * 13 + 9);
    });
  }
  function drawStrip() {
    const box = $("strip"), s = im.strip, ex = im.examples, v = ex && shown("examples", ex.sprite);
    if (!s || !v) { box.textContent = "held-out predictions appear once the model has trained"; return; }
    if (box.children.length !== s.index.length) {
      box.innerHTML = "";
      s.index.forEach((_, k) => {
        const cv = document.createElement("canvas");
        cv.width = 176; cv.height = 52; cv.dataset.testid = "heldout-" + k; cv.className = "cell";
        cv.addEventListener("click", () => PG.send({type: "inspect", index: +cv.dataset.index}));
        box.appendChild(cv);
      });
    }
    s.index.forEach((idx, k) => {
      const cv = box.children[k], ctx = cv.getContext("2d"), sp = v.sp;
      cv.dataset.index = idx;
      cv.className = "cell" + (idx === im.inspect ? " on" : "") + (s.top[k][0] !== ex.labels[idx] ? " wrong" : "");
      ctx.clearRect(0, 0, cv.width, cv.height);
      tile(ctx, sp, v.img, idx, 2, 2, 48 / Math.max(sp.w, sp.h));
      ctx.font = "10px system-ui, sans-serif";
      s.top[k].forEach((cls, j) => {
        ctx.fillStyle = cls === ex.labels[idx] ? "#1f9d55" : "#f0782a";
        ctx.fillRect(54, 4 + j * 16, Math.max(1, s.p[k][j] * 60), 11);
        ctx.fillStyle = "#344054"; ctx.fillText(ex.classes[cls].slice(0, 10), 117, 13 + j * 16);
      });
    });
    $("strip-caption").textContent = `${s.mistakes} of ${ex.labels.length} held-out images wrong; mistakes first`;
  }
  function drawThroughput(t) {
    $("throughput").textContent = t ? `forward ${t.forward_ms.toFixed(3)} ms / example · backward + update ` +
      `${t.backward_ms.toFixed(3)} ms / example · ${Math.round(t.images_per_s).toLocaleString()} images/s training`
      : "–";
  }
  let pending = false;
  function later() {  // at most one redraw per animation frame, however many messages arrive
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }
  function draw() {
    PG.drawCurves($("image-curves"), im.history);
    drawFilters(); drawActivations(); drawStrip();
  }

  // ---- controls ---------------------------------------------------------------------------------------------
  function fill(id, values, label, current) {
    const el = $(id);
    if (el === document.activeElement) return;
    const list = values.slice();
    if (current !== undefined && !list.some(v => String(v) === String(current))) list.push(current);
    if (typeof list[0] === "number") list.sort((a, b) => a - b);
    const same = el.options.length === list.length && list.every((v, i) => el.options[i].value === String(v));
    if (!same) {  // rebuilt only when the choices change: every state message calls fill, and a rebuilt list
      el.innerHTML = "";  // drops the option elements a pointer (or a test's Select) is on
      for (const v of list) {
        const o = document.createElement("option");
        o.value = String(v); o.textContent = label ? label(v) : String(v); el.appendChild(o);
      }
    }
    if (current !== undefined) el.value = String(current);
  }
  function put(id, v) { if ($(id) !== document.activeElement) $(id).value = v; }
  function sync(msg) {
    const p = msg.params[msg.model], rules = im.rules.params[msg.model];
    fill("image-dataset", im.rules.datasets, null, msg.data.dataset);
    fill("image-model", im.rules.models, v => im.rules.labels[v] || v, msg.model);
    // a control shows when the model's estimator takes its parameter (the server's rules say which)
    document.querySelectorAll("#images-main [data-param]").forEach(c => {
      c.hidden = !c.dataset.param.split(" ").some(k => k in rules);
    });
    if ("hidden_sizes" in p) put("image-hidden", p.hidden_sizes.join(", "));
    if ("channels" in p) put("image-channels", p.channels.join(", "));
    if ("kernel_size" in p) fill("image-kernel", rules.kernel_size.values, v => v + " x " + v, p.kernel_size);
    if ("pool" in p) fill("image-pool", rules.pool.values, v => v === "max" ? "max 2 x 2" : "average 2 x 2", p.pool);
    if ("activation" in p) fill("image-activation", rules.activation.values, null, p.activation);
    const l2 = "weight_decay" in p ? "weight_decay" : "reg";
    $("image-lambda-name").textContent = l2;
    fill("image-lambda", L2, null, p[l2]);
    fill("image-lr", LR, null, p.lr);
    fill("image-optimizer", rules.optimizer.values, null, p.optimizer);
    fill("image-batch", BATCH.filter(b => b <= rules.batch_size.max), null, p.batch_size);
    $("gradients").checked = msg.view.gradients;
  }
  function params(p) { PG.set({params: p}); }
  function wire() {
    $("image-dataset").addEventListener("change", e => PG.set({data: {dataset: e.target.value}}));
    $("image-model").addEventListener("change", e => PG.set({model: e.target.value}));
    for (const [id, key] of [["image-hidden", "hidden_sizes"], ["image-channels", "channels"]]) {
      $(id).addEventListener("change", e => {
        const parts = e.target.value.split(/[\s,]+/).filter(t => t !== "");
        if (!parts.length) return;  // an emptied field is being retyped, not "no hidden layer"
        params({[key]: parts.map(t => (/^-?\d+$/.test(t) ? Number(t) : t))});  // the server checks them
      });
    }
    $("image-kernel").addEventListener("change", e => params({kernel_size: +e.target.value}));
    $("image-pool").addEventListener("change", e => params({pool: e.target.value}));
    $("image-activation").addEventListener("change", e => params({activation: e.target.value}));
    $("image-lambda").addEventListener("change", e => params({[$("image-lambda-name").textContent]: +e.target.value}));
    $("image-lr").addEventListener("change", e => params({lr: +e.target.value}));
    $("image-optimizer").addEventListener("change", e => params({optimizer: e.target.value}));
    $("image-batch").addEventListener("change", e => params({batch_size: +e.target.value}));
    $("gradients").addEventListener("change", e => PG.set({view: {gradients: e.target.checked}}));
  }

  PG.images = {
    init(rules) { im.rules = rules; },
    examples(msg) {
      im.examples = msg;
      im.strip = null;
      later();
    },
    // a "state" or "frame" of the images session; `settle`: the server has handled all the page sent
    receive(msg, settle) {
      im.inspect = msg.inspect;
      if (msg.type === "frame") {
        if (msg.run !== im.run) { im.run = msg.run; im.history = []; }
        if (msg.history) {
          const h = im.history, prev = h[h.length - 1];
          if (!prev || prev.step !== msg.history.step) h.push(msg.history); else h[h.length - 1] = msg.history;
          if (h.length > 4000) h.splice(0, h.length - 4000);
        }
        if ("filters" in msg) { im.filters = msg.filters; im.acts = msg.activations; im.strip = msg.strip; }
        drawThroughput(msg.throughput);
      }
      if (settle) sync(msg);
      later();
    },
    state() {
      return {filters: im.filters ? im.filters.png : null,
              activations: im.acts ? im.acts.layers.map(l => l.png).join() : null,
              strip: im.strip ? im.strip.index : null, inspect: im.inspect,
              n_held_out: im.examples ? im.examples.labels.length : 0};
    },
  };
  wire();
})(window.PG);
