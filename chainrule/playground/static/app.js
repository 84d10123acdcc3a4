// The playground page: one WebSocket to this tab's session, the controls, and what to redraw when a frame comes.
// Hooks for tests and scripts: data-testid on the controls, and window.playground (state, send, surfaceRoughness).
"use strict";
(function (PG) {
  const $ = id => document.getElementById(id);
  const LR = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
  const L2 = [0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
  const BATCH = [1, 5, 10, 20, 32, 64, 100, 200, 500];
  const OPTIMIZER_LABELS = {  // the lecture's names for the estimators' optimizer / momentum / nesterov settings
    sgd: "SGD  (optimizer='sgd', momentum=0)", "sgd+momentum": "SGD + momentum  (optimizer='sgd')",
    "sgd+nesterov": "Nesterov momentum  (optimizer='sgd', nesterov=True)", adam: "Adam  (optimizer='adam')",
    adamw: "AdamW  (optimizer='adamw')", rmsprop: "RMSProp  (optimizer='rmsprop')",
  };
  const st = {
    rules: null, settings: null, sent: 0, applied: 0, points: null, image: null, lines: null, network: null, graph: null,
    history: [], run: null, frames: 0, protocolError: null, sessionError: null, last: {}, connected: false,
    addClass: 0, clickMode: "add",
  };
  let ws = null, drawPending = false;

  // ---- the socket -------------------------------------------------------------------------------------------
  function connect() {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = () => { st.connected = true; setConn("connected", "ok"); };
    ws.onclose = ev => {  // the reason says why the server closed it ("server full", "idle"), when it did
      st.connected = false;
      setConn("disconnected" + (ev.reason ? " (" + ev.reason + ")" : "") + ": reload the page to start a new session",
              "bad");
    };
    ws.onmessage = ev => receive(JSON.parse(ev.data));
  }
  // While the page is visible it says so once a minute, so that the server's idle timeout closes only forgotten
  // tabs. Not counted in st.sent: the server sends no reply to a ping.
  setInterval(() => {
    if (ws && ws.readyState === WebSocket.OPEN && document.visibilityState === "visible") ws.send('{"type":"ping"}');
  }, 60000);
  function setConn(text, cls) { const c = $("conn"); c.textContent = text; c.className = "conn " + cls; }
  function send(msg) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
    st.sent += 1;
    return true;
  }
  function set(part) { st.protocolError = null; showError(); send(Object.assign({type: "set"}, part)); }
  PG.send = send;
  PG.set = set;

  function receive(msg) {
    if (msg.applied !== undefined) st.applied = msg.applied;
    if (msg.type === "hello") { st.rules = msg.rules; buildStaticControls(); PG.images.init(msg.rules.images); return; }
    if (msg.type === "examples") { showMode("images"); PG.images.examples(msg); return; }
    if (msg.type === "error") { st.protocolError = msg; showError(); return; }
    if (msg.type === "points") {
      showMode("points"); st.points = msg; buildClassSwatches(msg.classes); schedule(); return;
    }
    // "state" and "frame"
    st.last = msg;
    st.sessionError = msg.error;
    if (msg.mode === "images") {
      showMode("images");
      if (msg.type === "frame") st.frames += 1;
      PG.images.receive(msg, st.applied === st.sent);
      updateCounters();
      showError();
      return;
    }
    if (msg.type === "frame") {
      st.frames += 1;
      if (msg.run !== st.run) { st.run = msg.run; st.history = []; }
      if (msg.history) {
        const h = st.history, prev = h[h.length - 1];
        if (!prev || prev.step !== msg.history.step || prev.epoch !== msg.history.epoch) h.push(msg.history);
        else h[h.length - 1] = msg.history;
        if (h.length > 4000) h.splice(0, h.length - 4000);
      }
      st.image = msg.surface ? PG.surfaceImage(msg.surface) : null;
      st.lines = msg.lines || null;
      if ("network" in msg) st.network = msg.network;
      if ("graph" in msg) st.graph = msg.graph;
    }
    // Controls follow the server's settings only when it has handled every message sent: a reply to an earlier
    // change, arriving while later ones are on their way, would otherwise put the old values back in the controls.
    if (!sameSettings(msg) && (st.settings === null || st.applied === st.sent)) { st.settings = msg; syncControls(); }
    updateCounters();
    showError();
    schedule();
  }
  // Which mode's panel shows: the server's (a points or an images message says which session answered).
  function showMode(mode) {
    st.mode = mode;
    $("points-main").hidden = mode !== "points";
    $("images-main").hidden = mode !== "images";
    if ($("mode") !== document.activeElement) $("mode").value = mode;
  }
  function sameSettings(msg) {
    const s = st.settings;
    return s && JSON.stringify([s.data, s.features, s.model, s.params]) ===
      JSON.stringify([msg.data, msg.features, msg.model, msg.params]);
  }

  // ---- drawing (at most once per animation frame) ---------------------------------------------------------------
  function schedule() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; draw(); });
  }
  function draw() {
    const plane = st.rules ? st.rules.plane : 1.25;
    PG.drawSurface($("surface"), {plane: plane, image: st.image, points: st.points, lines: st.lines,
                                  inspect: st.last.inspect});
    PG.drawCurves($("curves"), st.history);
    const model = st.settings ? st.settings.model : "mlp";
    PG.drawNetwork($("network"), st.network, model === "knn"
      ? "k-nearest neighbours has no weights: it memorises the training points and votes among the k closest."
      : "press play or step to train");
    PG.drawGraph($("graph"), st.graph, (w, g) => { const d = $("graph-detail"); d.hidden = false;
                                                   d.textContent = PG.wireDetail(w, g); });
    $("graph-caption").textContent = st.graph ? "point #" + st.last.inspect + ", class " + st.graph.label : "";
    $("graph-note").textContent = st.graph ? st.graph.note + ". Hover or click a wire for all its numbers."
      : model === "knn" ? "kNN computes no loss: there is no graph to backpropagate through."
      : "Choose “inspect a point” above and click a training point to see its forward and backward pass.";
    $("network-caption").textContent = st.network ? describeNetwork(st.network) : "";
    const s = st.settings;
    $("surface-caption").textContent = s ? (s.data.dataset + ", " + s.data.classes + " classes · " +
      (st.points ? st.points.train.length + " train / " + st.points.test.length + " test" : "")) : "";
  }
  function describeNetwork(net) {
    const sizes = net.layers.map(l => l.n);
    return sizes.join("–") + (net.activation === "linear" ? " linear" : " " + net.activation);
  }

  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }
  function updateCounters() {
    const m = st.last;
    $("c-step").textContent = m.step || 0;
    $("c-epoch").textContent = m.epoch || 0;
    $("c-rate").textContent = m.steps_per_s ? Math.round(m.steps_per_s)
      : m.throughput ? Math.round(m.throughput.images_per_s / 20) * 20 + " img" : "–";
    $("c-loss").textContent = m.loss === null || m.loss === undefined ? "–" : (+m.loss).toPrecision(3);
    $("c-train").textContent = pct(m.train_accuracy);
    $("c-test").textContent = pct(m.test_accuracy);
    $("play").innerHTML = m.running ? "&#x25AE;&#x25AE; pause" : "&#x25B6; play";
    if (m.mode === "images") return;
    $("model-hint").textContent = m.notice || hintFor(st.settings ? st.settings.model : "mlp");
  }
  function hintFor(model) {
    return {
      knn: "kNN's fit only memorises the points: the regions change the moment you change k or the distance.",
      svm: "Dashed lines: where each class's score w·x + b is 0 (x, y inputs only); the arrow points to higher scores.",
      softmax: "Dashed lines: where each class's score w·x + b is 0 (x, y inputs only); the arrow points to higher scores.",
      mlp: "λ, learning rate, optimizer, momentum and batch size change the running model; " +
           "data, features, layers and activation start a new one.",
    }[model];
  }
  function showError() {
    const e = st.protocolError || st.sessionError;
    $("error").hidden = !e;
    $("error-text").textContent = e ? e.message : "";
  }

  // ---- controls --------------------------------------------------------------------------------------------
  function options(select, values, label, current) {
    const list = values.slice();
    if (current !== undefined && !list.some(v => String(v) === String(current))) list.push(current);
    list.sort((a, b) => (typeof a === "number" ? a - b : 0));
    select.innerHTML = "";
    for (const v of list) {
      const o = document.createElement("option");
      o.value = String(v); o.textContent = label ? label(v) : String(v);
      select.appendChild(o);
    }
    if (current !== undefined) select.value = String(current);
  }
  function buildStaticControls() {
    const feats = $("features");
    feats.innerHTML = "";
    for (const [name, label] of Object.entries(st.rules.features)) {
      const l = document.createElement("label"), box = document.createElement("input");
      box.type = "checkbox"; box.value = name; box.dataset.testid = "feature-" + name;
      box.addEventListener("change", () => set({features: selectedFeatures()}));
      l.appendChild(box); l.appendChild(document.createTextNode(label));
      feats.appendChild(l);
    }
    options($("activation"), st.rules.params.mlp.activation.values);
    // The model list is the registry's (chainrule.classifiers.model_names("points")): the page's own entries keep
    // their wording, models registered by anyone else are added under their label; none outside it is offered.
    const select = $("model"), offered = new Set(st.rules.models.map(m => m.name));
    for (const o of Array.from(select.options)) if (!offered.has(o.value)) o.remove();
    for (const m of st.rules.models) {
      if (Array.from(select.options).some(o => o.value === m.name)) continue;
      const o = document.createElement("option");
      o.value = m.name; o.textContent = m.label + " (" + m.estimator + ")";
      select.appendChild(o);
    }
  }
  function selectedFeatures() {
    return Array.from($("features").querySelectorAll("input:checked")).map(b => b.value);
  }
  function buildClassSwatches(n) {
    const box = $("add-class");
    if (box.children.length === n) return;
    box.innerHTML = "";
    st.addClass = Math.min(st.addClass, n - 1);
    for (let c = 0; c < n; c++) {
      const b = document.createElement("button");
      b.style.background = PG.CLASS_COLORS[c]; b.title = "class " + c; b.dataset.testid = "add-class-" + c;
      b.className = c === st.addClass ? "on" : "";
      b.addEventListener("click", () => { st.addClass = c; buildClassSwatches(-1); buildClassSwatches(n); });
      box.appendChild(b);
    }
  }
  function optimizerChoice(p) {
    if (p.optimizer !== "sgd") return p.optimizer;
    if (!p.momentum) return "sgd";
    return p.nesterov ? "sgd+nesterov" : "sgd+momentum";
  }
  function optimizerChoices(model) {
    const out = [];
    for (const o of st.rules.params[model].optimizer.values) {
      if (o === "sgd") {
        out.push("sgd", "sgd+momentum");
        if ("nesterov" in st.rules.params[model]) out.push("sgd+nesterov");
      } else out.push(o);
    }
    return out;
  }
  function syncControls() {
    const s = st.settings, d = s.data, model = s.model, p = s.params[model];
    put("dataset", d.dataset);
    choices("classes", st.rules.datasets[d.dataset], null, d.classes);
    for (const k of ["noise", "n_points", "train_fraction"]) { put(k, d[k]); showValue(k); }
    put("seed", d.seed);
    for (const box of $("features").querySelectorAll("input")) {
      box.checked = s.features.includes(box.value);
      box.parentElement.className = box.checked ? "on" : "";
    }
    put("model", model);
    document.querySelectorAll(".group").forEach(g => { g.hidden = !g.dataset.models.split(" ").includes(model); });
    if (model === "knn") { put("k", p.k); put("metric", p.metric); return; }
    if (model === "mlp") {
      put("layers", p.hidden_sizes.length);
      if (p.hidden_sizes.length) put("neurons", p.hidden_sizes[0]);
      put("widths", p.hidden_sizes.join(", "));
      put("activation", p.activation);
    }
    const l2 = model === "mlp" ? "weight_decay" : "reg";
    $("lambda-name").textContent = l2;
    choices("lambda", L2, null, p[l2]);
    choices("lr", LR, null, p.lr);
    choices("batch_size", BATCH, null, p.batch_size);
    choices("optimizer", optimizerChoices(model), v => OPTIMIZER_LABELS[v] || v, optimizerChoice(p));
    put("momentum", p.momentum);
    document.querySelector(".momentum-row").hidden = !optimizerChoice(p).startsWith("sgd+");
  }
  // A reply to an earlier change can arrive while the learner edits another control: never overwrite the control
  // that has the focus (its own change event will send what it holds).
  function put(id, value) {
    const el = $(id);
    if (el !== document.activeElement) el.value = value;
  }
  function choices(id, values, label, current) {
    if ($(id) !== document.activeElement) options($(id), values, label, current);
  }
  function showValue(k) {
    const v = +$(k).value;
    $(k + "-val").textContent = k === "train_fraction" ? Math.round(100 * v) + "% / " + Math.round(100 * (1 - v)) + "%"
      : String(v);
  }
  // "16, 8" -> [16, 8]; else the rule the text breaks, as a string (nothing is sent). An empty field is not
  // "no hidden layer" (clearing it to type would reset the model): that is "hidden layers" = 0.
  function parseWidths(text) {
    const parts = text.split(/[\s,]+/).filter(t => t !== "");
    if (!parts.length) return 'widths: one number per hidden layer, e.g. 16, 8 (no hidden layer: "hidden layers" 0)';
    const bad = parts.find(t => !/^\d+$/.test(t) || +t < 1 || +t > 64);
    if (bad !== undefined) return `widths: each layer has 1 to 64 neurons, got "${bad}"; e.g. 16, 8`;
    if (parts.length > 6) return `widths: at most 6 hidden layers, got ${parts.length}`;
    return parts.map(Number);
  }
  function model() { return st.settings.model; }
  function params(p) { set({params: p}); }

  function wire() {
    $("play").addEventListener("click", () => send({type: st.last.running ? "pause" : "play"}));
    $("mode").addEventListener("change", e => {
      st.protocolError = null; showError(); send({type: "mode", mode: e.target.value});
    });
    $("step").addEventListener("click", () => send({type: "step"}));
    $("reset").addEventListener("click", () => send({type: "reset"}));
    $("clear").addEventListener("click", () => send({type: "clear"}));
    $("error-close").addEventListener("click", () => { st.protocolError = null; $("error").hidden = true; });
    $("dataset").addEventListener("change", e => set({data: {dataset: e.target.value}}));
    $("classes").addEventListener("change", e => set({data: {classes: +e.target.value}}));
    for (const k of ["noise", "n_points", "train_fraction"]) {
      $(k).addEventListener("input", () => showValue(k));
      $(k).addEventListener("change", e => set({data: {[k]: +e.target.value}}));
    }
    $("seed").addEventListener("change", e => set({data: {seed: Number(e.target.value)}}));
    $("reseed").addEventListener("click", () => set({data: {seed: Math.floor(Math.random() * 100000)}}));
    document.querySelectorAll("#click-mode input").forEach(r => r.addEventListener("change", e => {
      st.clickMode = e.target.value;
    }));
    $("model").addEventListener("change", e => set({model: e.target.value}));
    $("k").addEventListener("change", e => params({k: Number(e.target.value)}));
    $("metric").addEventListener("change", e => params({metric: e.target.value}));
    // layers and neurons set every hidden layer to one width; widths sets each layer's own ("16, 8, 4")
    const hidden = () => params({hidden_sizes: Array(Number($("layers").value)).fill(Number($("neurons").value))});
    $("layers").addEventListener("change", hidden);
    $("neurons").addEventListener("change", hidden);
    $("widths").addEventListener("change", e => {
      const sizes = parseWidths(e.target.value);
      $("widths-error").hidden = typeof sizes !== "string";
      if (typeof sizes === "string") { $("widths-error").textContent = sizes; return; }
      params({hidden_sizes: sizes});
    });
    $("activation").addEventListener("change", e => params({activation: e.target.value}));
    $("lambda").addEventListener("change", e => params({[model() === "mlp" ? "weight_decay" : "reg"]: +e.target.value}));
    $("lr").addEventListener("change", e => params({lr: +e.target.value}));
    $("batch_size").addEventListener("change", e => params({batch_size: +e.target.value}));
    $("momentum").addEventListener("change", e => params({momentum: +e.target.value}));
    $("optimizer").addEventListener("change", e => {
      const v = e.target.value, m = +$("momentum").value || 0.9, p = {};
      if (v.startsWith("sgd")) {
        p.optimizer = "sgd"; p.momentum = v === "sgd" ? 0 : m;
        if ("nesterov" in st.rules.params[model()]) p.nesterov = v === "sgd+nesterov";
      } else p.optimizer = v;
      params(p);
    });
    $("surface").addEventListener("click", onSurfaceClick);
    document.addEventListener("keydown", e => {
      if (["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName)) return;
      if (e.key === " ") { e.preventDefault(); $("play").click(); }
      else if (e.key === "s") $("step").click();
      else if (e.key === "r") $("reset").click();
    });
  }
  function onSurfaceClick(e) {
    const c = $("surface"), r = c.getBoundingClientRect();
    const px = (e.clientX - r.left) * c.width / r.width, py = (e.clientY - r.top) * c.height / r.height;
    const P = st.rules.plane, [x, y] = PG.toPlane(P, c.width, px, py);
    if (st.clickMode === "add") {
      send({type: "add_point", x: +x.toFixed(4), y: +y.toFixed(4), label: st.addClass});
      return;
    }
    let best = null, bestD = 14;  // pixels
    (st.points ? st.points.train : []).forEach(([a, b], i) => {
      const [qx, qy] = PG.toCanvas(P, c.width, a, b), dist = Math.hypot(qx - px, qy - py);
      if (dist < bestD) { bestD = dist; best = i; }
    });
    send({type: "inspect", index: best});
  }

  // Mean absolute difference between neighbouring cells of the class-probability map (in [0, 1]): lower is smoother.
  function surfaceRoughness() {
    const im = st.image;
    if (!im) return null;
    const S = im.size, p = im.probs;
    let sum = 0, n = 0;
    for (let c = 0; c < im.classes; c++) {
      const o = c * S * S;
      for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
        const v = p[o + i * S + j];
        if (j + 1 < S) { sum += Math.abs(p[o + i * S + j + 1] - v); n++; }
        if (i + 1 < S) { sum += Math.abs(p[o + (i + 1) * S + j] - v); n++; }
      }
    }
    return sum / n / 255;
  }

  window.playground = {
    state: () => {
      const m = st.last, e = st.protocolError || st.sessionError;
      return {mode: m.mode || "points", step: m.step || 0, epoch: m.epoch || 0, loss: m.loss === undefined ? null : m.loss,
              train_accuracy: m.train_accuracy === undefined ? null : m.train_accuracy,
              test_accuracy: m.test_accuracy === undefined ? null : m.test_accuracy,
              running: !!m.running, error: e ? e.message : null, error_field: e ? e.field : null,
              connected: st.connected, frames: st.frames,
              model: m.mode === "images" ? m.model : st.settings ? st.settings.model : null,
              n_train: st.points ? st.points.train.length : 0, n_test: st.points ? st.points.test.length : 0,
              has_graph: !!st.graph, has_network: !!st.network, pending: st.sent - st.applied,
              params: m.mode === "images" ? m.params[m.model]
                : st.settings ? st.settings.params[st.settings.model] : null,
              throughput: m.throughput || null};
    },
    images: () => PG.images.state(),
    send: send,
    surfaceRoughness: surfaceRoughness,
    points: () => st.points ? {train: st.points.train, test: st.points.test} : null,
  };

  wire();
  draw();
  connect();
})(window.PG);
