// Drawing on canvases: the decision surface with its points, the loss/accuracy curves and the network view.
// Plain JavaScript, no dependencies. Everything hangs off window.PG.
"use strict";
window.PG = window.PG || {};
(function (PG) {
  PG.CLASS_COLORS = ["#f0782a", "#2f6fd6", "#1f9d55", "#c2418a", "#7a4fd0"];
  const RGB = PG.CLASS_COLORS.map(hex => [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16)));
  const NEG = [240, 120, 42], POS = [47, 111, 214];   // orange below zero, blue above (TensorFlow Playground)

  PG.decode = function (b64, Type) {
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return Type === Int8Array ? new Int8Array(out.buffer) : out;
  };

  function mix(rgb, t) {  // white -> rgb by t in [0, 1]
    return [255 + (rgb[0] - 255) * t, 255 + (rgb[1] - 255) * t, 255 + (rgb[2] - 255) * t];
  }

  // plane [-P, P]^2 <-> canvas pixels
  PG.toCanvas = (P, W, x, y) => [(x + P) / (2 * P) * W, (P - y) / (2 * P) * W];
  PG.toPlane = (P, W, px, py) => [px / W * 2 * P - P, P - py / W * 2 * P];

  // The decision surface: argmax class colour, shaded by confidence (white where classes tie, deep where one wins).
  PG.surfaceImage = function (surface) {
    const S = surface.size, C = surface.classes, probs = PG.decode(surface.probs);
    const off = document.createElement("canvas");
    off.width = off.height = S;
    const ctx = off.getContext("2d"), img = ctx.createImageData(S, S);
    for (let i = 0; i < S * S; i++) {
      let best = 0, pmax = -1;
      for (let c = 0; c < C; c++) { const p = probs[c * S * S + i]; if (p > pmax) { pmax = p; best = c; } }
      const conf = Math.max(0, (pmax / 255 - 1 / C) / (1 - 1 / C));
      const rgb = mix(RGB[best % RGB.length], 0.10 + 0.62 * conf);
      img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
    return {canvas: off, probs: probs, size: S, classes: C};
  };

  PG.drawSurface = function (canvas, view) {
    const ctx = canvas.getContext("2d"), W = canvas.width, P = view.plane;
    ctx.fillStyle = "#f8f9fb";
    ctx.fillRect(0, 0, W, W);
    if (view.image) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(view.image.canvas, 0, 0, W, W);
    }
    // axes
    ctx.strokeStyle = "rgba(0,0,0,0.12)";
    ctx.lineWidth = 1;
    for (const v of [-1, 0, 1]) {
      const [a] = PG.toCanvas(P, W, v, 0), [, b] = PG.toCanvas(P, W, 0, v);
      ctx.beginPath(); ctx.moveTo(a, 0); ctx.lineTo(a, W); ctx.moveTo(0, b); ctx.lineTo(W, b); ctx.stroke();
    }
    ctx.fillStyle = "rgba(0,0,0,0.45)";
    ctx.font = "11px system-ui, sans-serif";
    for (const v of [-1, 1]) {
      const [a] = PG.toCanvas(P, W, v, 0);
      ctx.fillText(String(v), a + 3, W - 4);
      const [, b] = PG.toCanvas(P, W, 0, v);
      ctx.fillText(String(v), 3, b - 3);
    }
    if (view.lines) drawScoreLines(ctx, view.lines, P, W);
    const pts = view.points;
    if (!pts) return;
    for (const [x, y, c] of pts.test) {
      const [px, py] = PG.toCanvas(P, W, x, y);
      ctx.beginPath(); ctx.arc(px, py, 4, 0, 2 * Math.PI);
      ctx.fillStyle = "#fff"; ctx.fill();
      ctx.lineWidth = 2.5; ctx.strokeStyle = PG.CLASS_COLORS[c]; ctx.stroke();
    }
    for (const [x, y, c] of pts.train) {
      const [px, py] = PG.toCanvas(P, W, x, y);
      ctx.beginPath(); ctx.arc(px, py, 4.5, 0, 2 * Math.PI);
      ctx.fillStyle = PG.CLASS_COLORS[c]; ctx.fill();
      ctx.lineWidth = 1.3; ctx.strokeStyle = "#fff"; ctx.stroke();
    }
    if (view.inspect !== null && view.inspect !== undefined && pts.train[view.inspect]) {
      const [x, y] = pts.train[view.inspect], [px, py] = PG.toCanvas(P, W, x, y);
      ctx.beginPath(); ctx.arc(px, py, 9, 0, 2 * Math.PI);
      ctx.lineWidth = 2.5; ctx.strokeStyle = "#111"; ctx.stroke();
    }
  };

  // A linear classifier on (x, y): class c's score w_c . (x, y) + b_c is 0 on a line; the arrow points where it grows.
  function drawScoreLines(ctx, lines, P, W) {
    lines.forEach(([wx, wy, b], c) => {
      const n = Math.hypot(wx, wy);
      if (n < 1e-9) return;
      const x0 = -b * wx / (n * n), y0 = -b * wy / (n * n), dx = -wy / n, dy = wx / n, L = 4 * P;
      const [ax, ay] = PG.toCanvas(P, W, x0 - L * dx, y0 - L * dy), [bx, by] = PG.toCanvas(P, W, x0 + L * dx, y0 + L * dy);
      ctx.save();
      ctx.strokeStyle = PG.CLASS_COLORS[c]; ctx.lineWidth = 2; ctx.setLineDash([7, 5]);
      ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke();
      ctx.setLineDash([]);
      // the arrow from the point of the line nearest the origin's projection, clamped into view
      let cx = Math.max(-P * 0.8, Math.min(P * 0.8, x0)), cy = Math.max(-P * 0.8, Math.min(P * 0.8, y0));
      const t = -(wx * cx + wy * cy + b) / (n * n);
      cx += t * wx; cy += t * wy;
      const [sx, sy] = PG.toCanvas(P, W, cx, cy), [ex, ey] = PG.toCanvas(P, W, cx + 0.18 * wx / n, cy + 0.18 * wy / n);
      ctx.lineWidth = 2.5; ctx.beginPath(); ctx.moveTo(sx, sy); ctx.lineTo(ex, ey); ctx.stroke();
      const ang = Math.atan2(ey - sy, ex - sx);
      ctx.beginPath(); ctx.moveTo(ex, ey);
      ctx.lineTo(ex - 8 * Math.cos(ang - 0.45), ey - 8 * Math.sin(ang - 0.45));
      ctx.lineTo(ex - 8 * Math.cos(ang + 0.45), ey - 8 * Math.sin(ang + 0.45));
      ctx.closePath(); ctx.fillStyle = PG.CLASS_COLORS[c]; ctx.fill();
      ctx.restore();
    });
  }

  // Loss (left axis) and train/test accuracy (right axis, 0..1) against optimizer steps.
  PG.drawCurves = function (canvas, history) {
    const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
    const L = 40, R = 36, T = 22, B = 22, w = W - L - R, h = H - T - B;
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px system-ui, sans-serif";
    ctx.strokeStyle = "#e4e7ec"; ctx.lineWidth = 1;
    ctx.strokeRect(L, T, w, h);
    const pts = history.filter(r => r.step !== undefined);
    const legend = [["loss", "#344054", []], ["train accuracy", "#2f6fd6", []], ["test accuracy", "#1f9d55", [5, 3]]];
    let lx = L;
    for (const [name, color, dash] of legend) {
      ctx.strokeStyle = color; ctx.setLineDash(dash); ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(lx, 10); ctx.lineTo(lx + 18, 10); ctx.stroke(); ctx.setLineDash([]);
      ctx.fillStyle = "#475467"; ctx.fillText(name, lx + 22, 14);
      lx += 40 + ctx.measureText(name).width;
    }
    if (pts.length === 0) {
      ctx.fillStyle = "#98a2b3"; ctx.fillText("press play", L + w / 2 - 25, T + h / 2);
      return;
    }
    const x0 = pts[0].step, x1 = Math.max(pts[pts.length - 1].step, x0 + 1);
    const losses = pts.map(r => r.loss).filter(v => v !== null && isFinite(v));
    const lmax = losses.length ? Math.max(...losses) * 1.05 || 1 : 1;
    const X = s => L + (s - x0) / (x1 - x0) * w, YL = v => T + h - v / lmax * h, YA = v => T + h - v * h;
    ctx.fillStyle = "#667085";
    ctx.fillText(lmax.toPrecision(2), 4, T + 8); ctx.fillText("0", L - 12, T + h);
    ctx.fillText("100%", W - R + 3, T + 8); ctx.fillText("0%", W - R + 3, T + h);
    ctx.fillText("step " + x1, W - R - 50, H - 6); ctx.fillText(String(x0), L, H - 6);
    const every = Math.max(1, Math.floor(pts.length / w));
    function line(get, Y, color, dash) {
      ctx.strokeStyle = color; ctx.setLineDash(dash); ctx.lineWidth = 1.8; ctx.beginPath();
      let started = false;
      for (let i = 0; i < pts.length; i += every) {
        const v = get(pts[i]);
        if (v === null || v === undefined || !isFinite(v)) continue;
        if (started) ctx.lineTo(X(pts[i].step), Y(v)); else { ctx.moveTo(X(pts[i].step), Y(v)); started = true; }
      }
      const last = pts[pts.length - 1], v = get(last);
      if (started && v !== null && isFinite(v)) ctx.lineTo(X(last.step), Y(v));
      ctx.stroke(); ctx.setLineDash([]);
    }
    line(r => r.loss, YL, "#344054", []);
    line(r => r.train_accuracy, YA, "#2f6fd6", []);
    line(r => r.test_accuracy, YA, "#1f9d55", [5, 3]);
  };

  function wrapText(ctx, text, x, y, width, lineHeight) {
    let line = "";
    for (const word of text.split(" ")) {
      if (line && ctx.measureText(line + " " + word).width > width) { ctx.fillText(line, x, y); y += lineHeight; line = word; }
      else line = line ? line + " " + word : word;
    }
    if (line) ctx.fillText(line, x, y);
  }

  // The network: one column per layer, each neuron a small map of its value over the plane, each weight a line
  // (blue positive, orange negative, thicker = larger |w|).
  PG.drawNetwork = function (canvas, net, info) {
    const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px system-ui, sans-serif";
    if (!net) {
      ctx.fillStyle = "#667085";
      wrapText(ctx, info || "", 16, 30, W - 32, 16);
      return;
    }
    const layers = net.layers, R = net.size, nL = layers.length;
    const top = 30, bottom = 20, maxShown = Math.max(...layers.map(l => l.shown));
    const box = Math.max(10, Math.min(40, (H - top - bottom) / maxShown - 6));
    const left = 58, right = 60, colGap = (W - left - right - box) / Math.max(1, nL - 1);
    const pos = layers.map((l, li) => {
      const x = left + li * colGap, gap = box + 6, y0 = top + (H - top - bottom - l.shown * gap) / 2;
      return Array.from({length: l.shown}, (_, j) => [x, y0 + j * gap]);
    });
    // weights
    net.weights.forEach((wt, li) => {
      const [nin, nout] = wt.shape;
      let m = 1e-9;
      for (const v of wt.data) m = Math.max(m, Math.abs(v));
      for (let i = 0; i < nin; i++) for (let j = 0; j < nout; j++) {
        const v = wt.data[i * nout + j], a = pos[li][i], b = pos[li + 1][j];
        if (!a || !b) continue;
        ctx.strokeStyle = v >= 0 ? "rgba(47,111,214,0.75)" : "rgba(240,120,42,0.75)";
        ctx.lineWidth = 0.3 + 3.7 * Math.abs(v) / m;
        ctx.beginPath();
        ctx.moveTo(a[0] + box, a[1] + box / 2);
        ctx.bezierCurveTo(a[0] + box + colGap / 3, a[1] + box / 2, b[0] - colGap / 3, b[1] + box / 2, b[0], b[1] + box / 2);
        ctx.stroke();
      }
    });
    // neurons
    layers.forEach((l, li) => {
      const maps = PG.decode(l.maps, Int8Array), off = document.createElement("canvas");
      off.width = off.height = R;
      const octx = off.getContext("2d");
      for (let j = 0; j < l.shown; j++) {
        const img = octx.createImageData(R, R);
        for (let i = 0; i < R * R; i++) {
          const v = maps[j * R * R + i] / 127;
          const rgb = l.kind === "output" ? mix(RGB[j % RGB.length], Math.max(0, v))
                                          : mix(v >= 0 ? POS : NEG, Math.min(1, Math.abs(v)));
          img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
        }
        octx.putImageData(img, 0, 0);
        const [x, y] = pos[li][j];
        ctx.imageSmoothingEnabled = true;
        ctx.drawImage(off, x, y, box, box);
        ctx.strokeStyle = l.kind === "output" ? PG.CLASS_COLORS[j % 5] : "#98a2b3";
        ctx.lineWidth = l.kind === "output" ? 2 : 1;
        ctx.strokeRect(x - 0.5, y - 0.5, box + 1, box + 1);
        ctx.fillStyle = "#344054";
        if (l.kind === "input") ctx.fillText(l.labels[j], x - 8 - ctx.measureText(l.labels[j]).width, y + box / 2 + 4);
        if (l.kind === "output") ctx.fillText("class " + j, x + box + 6, y + box / 2 + 4);
      }
      const title = l.kind === "input" ? "inputs" : l.kind === "output" ? "output" : "hidden " + li;
      const sub = l.kind === "hidden" ? l.n + " " + net.activation : l.kind === "output" ? "softmax" : "";
      ctx.fillStyle = "#475467";
      const x = pos[li][0] ? pos[li][0][0] : left + li * colGap;
      ctx.fillText(title, x, 12); ctx.fillStyle = "#98a2b3"; ctx.fillText(sub, x, 24);
      if (l.n > l.shown) ctx.fillText("+" + (l.n - l.shown) + " more", x, H - 6);
    });
  };
})(window.PG);
