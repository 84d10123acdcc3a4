// The computational graph of one training point (chainrule.viz.graph_data) drawn as an SVG circuit, the lectures'
// way: inputs as boxes, gates as rounded nodes, each wire labelled with its forward value (green) and the loss's
// gradient with respect to it (red). Click a wire for all its numbers.
"use strict";
window.PG = window.PG || {};
(function (PG) {
  const NS = "http://www.w3.org/2000/svg", GREEN = "#1a7f37", RED = "#c0392b";

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmt(v) {
    if (v === null) return "nan";
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(1) : String(+v.toPrecision(3));
  }

  PG.arrayText = function (arr, limit) {
    if (!arr) return "";
    const d = arr.data, n = d.length;
    if (arr.shape.length === 0) return fmt(d[0]);
    const shown = d.slice(0, limit).map(fmt).join(", ");
    return "[" + shown + (n > limit || !arr.complete ? ", …" : "") + "]";
  };

  function fullText(arr) {
    if (!arr) return "(none: backward has not reached it)";
    return "shape (" + arr.shape.join(", ") + ")" + (arr.complete ? "" : " (first " + arr.data.length + ")") +
      "\n" + arr.data.map(fmt).join(", ");
  }

  // Layout, left to right: a gate one column after its deepest gate input; an input (and a gate fed by inputs
  // only, like the L2 penalty) in the column just before its first consumer. The main path (the root's first gate
  // input, back to x) runs along the middle row; everything else in a column goes above and below it in turn.
  function layout(graph) {
    const byId = {}, inputsOf = {}, consumers = {};
    graph.nodes.forEach(n => { byId[n.id] = n; inputsOf[n.id] = []; consumers[n.id] = []; });
    graph.wires.forEach(w => {
      if (w.target === null) return;
      inputsOf[w.target].push(w.source);
      consumers[w.source].push(w.target);
    });
    const isGate = id => byId[id].kind === "op", depth = {};
    graph.nodes.forEach(n => {  // topological order: inputs first
      depth[n.id] = isGate(n.id) ? 1 + Math.max(0, ...inputsOf[n.id].map(s => depth[s])) : 0;
    });
    for (let i = graph.nodes.length - 1; i >= 0; i--) {  // pull inputs and input-fed gates right, next to their use
      const id = graph.nodes[i].id;
      if (consumers[id].length && !inputsOf[id].some(isGate)) {  // an input, or a gate of inputs only
        depth[id] = Math.max(depth[id], Math.min(...consumers[id].map(t => depth[t])) - 1);
      }
    }
    const main = new Set();
    for (let id = graph.root; id !== undefined; id = inputsOf[id].find(isGate) || inputsOf[id][0]) main.add(id);
    const row = {}, used = {};
    graph.nodes.forEach(n => { if (main.has(n.id)) { row[n.id] = 0; used[depth[n.id]] = 1; } });
    graph.nodes.forEach(n => {
      if (main.has(n.id)) return;
      const k = used[depth[n.id]] = (used[depth[n.id]] || 0) + 1;  // 2, 3, 4, ... -> -1, +1, -2, +2, ...
      row[n.id] = (k % 2 === 0 ? -1 : 1) * Math.floor(k / 2);
    });
    return {depth: depth, row: row};
  }

  PG.drawGraph = function (svg, graph, onWire) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!graph) { svg.setAttribute("height", 40); return; }
    const {depth, row} = layout(graph);
    const colW = 118, rowH = 64, rows = Object.values(row);
    const top = Math.min(...rows), bottom = Math.max(...rows), nCols = Math.max(...Object.values(depth)) + 1;
    const H = (bottom - top + 1) * rowH + 50, W = nCols * colW + 90;
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    const xy = {};
    graph.nodes.forEach(n => { xy[n.id] = [44 + depth[n.id] * colW, 24 + (row[n.id] - top) * rowH + rowH / 2]; });
    const defs = el("defs", {});
    const marker = el("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6,
                                 markerHeight: 6, orient: "auto-start-reverse"});
    marker.appendChild(el("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "#667085"}));
    defs.appendChild(marker);
    svg.appendChild(defs);
    const halfWidth = n => n.kind === "input" ? 24 : Math.max(26, 3.3 * n.label.length + 9);
    const half = id => halfWidth(graph.nodes.find(n => n.id === id));
    const wiresG = el("g", {}), nodesG = el("g", {});
    svg.appendChild(wiresG); svg.appendChild(nodesG);
    const labelled = new Set();  // a value used twice shows its numbers on its first wire only (the same on both)
    graph.wires.forEach(w => {
      const [x1, y1] = xy[w.source];
      const [x2, y2] = w.target === null ? [x1 + colW - 30, y1] : xy[w.target];
      const sx = x1 + half(w.source), ex = w.target === null ? x2 : x2 - half(w.target);
      const first = !labelled.has(w.source);
      labelled.add(w.source);
      const g = el("g", {class: "wire"}), d = `M ${sx} ${y1} C ${sx + 40} ${y1}, ${ex - 40} ${y2}, ${ex} ${y2}`;
      g.appendChild(el("path", {d: d, fill: "none", stroke: "#98a2b3", "stroke-width": first ? 1.4 : 1,
                                "stroke-dasharray": first ? "" : "4 3", "marker-end": "url(#arrow)"}));
      g.appendChild(el("path", {d: d, fill: "none", stroke: "transparent", "stroke-width": 12}));
      if (first) {
        const straight = Math.abs(y2 - y1) < 1, mx = straight ? (sx + ex) / 2 : sx + 8, my = straight ? y1 : y1;
        const anchor = straight ? "middle" : "start";
        const short = arr => !arr ? "" : PG.arrayText(arr, 1);
        g.appendChild(el("text", {x: mx, y: my - 5, "text-anchor": anchor, "font-size": 10, fill: GREEN},
                         short(w.value)));
        if (w.grad) g.appendChild(el("text", {x: mx, y: my + 12, "text-anchor": anchor, "font-size": 10, fill: RED},
                                     short(w.grad)));
      }
      g.appendChild(el("title", {}, "value " + fullText(w.value) + "\ngradient " + fullText(w.grad)));
      g.addEventListener("click", () => onWire && onWire(w, graph));
      wiresG.appendChild(g);
    });
    graph.nodes.forEach(n => {
      const [x, y] = xy[n.id];
      if (n.kind === "input") {
        nodesG.appendChild(el("rect", {x: x - 24, y: y - 14, width: 48, height: 28, rx: 3, fill: "#fff",
                                       stroke: "#344054", "stroke-width": 1.3}));
      } else {
        const w = halfWidth(n);
        nodesG.appendChild(el("rect", {x: x - w, y: y - 15, width: 2 * w, height: 30, rx: 15, fill: "#eef4ff",
                                       stroke: "#2f6fd6", "stroke-width": 1.3}));
      }
      nodesG.appendChild(el("text", {x: x, y: y + 4, "text-anchor": "middle", "font-size": 11, fill: "#1f2933"},
                            n.label));
      if (n.kind === "op" && n.name) {
        nodesG.appendChild(el("text", {x: x, y: y - 20, "text-anchor": "middle", "font-size": 10, fill: "#667085"},
                              n.name));
      }
    });
    const root = graph.wires.find(w => w.target === null);
    const [rx, ry] = xy[root.source];
    svg.appendChild(el("text", {x: rx + colW - 24, y: ry + 4, "font-size": 12, "font-weight": 600, fill: "#1f2933"},
                           "loss"));
    svg.appendChild(el("text", {x: 8, y: H - 8, "font-size": 11, fill: GREEN}, "forward value"));
    svg.appendChild(el("text", {x: 100, y: H - 8, "font-size": 11, fill: RED}, "gradient of the loss"));
  };

  PG.wireDetail = function (w, graph) {
    const src = graph.nodes.find(n => n.id === w.source);
    const name = src.name || src.label;
    return name + "\nvalue " + fullText(w.value) + "\ngradient " + fullText(w.grad);
  };
})(window.PG);
