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

  // Depth of each node: gates one column after their deepest input; inputs just before the first gate using them.
  function layout(graph) {
    const depth = {}, byId = {}, consumers = {};
    graph.nodes.forEach(n => { byId[n.id] = n; consumers[n.id] = []; });
    const inputsOf = {};
    graph.wires.forEach(w => {
      if (w.target === null) return;
      (inputsOf[w.target] = inputsOf[w.target] || []).push(w.source);
      consumers[w.source].push(w.target);
    });
    graph.nodes.forEach(n => {  // topological order: inputs first
      if (n.kind === "op") depth[n.id] = 1 + Math.max(0, ...(inputsOf[n.id] || []).map(s => depth[s] || 0));
    });
    graph.nodes.forEach(n => {
      if (n.kind === "input") depth[n.id] = Math.max(0, Math.min(...consumers[n.id].map(t => depth[t])) - 1);
    });
    const columns = {};
    graph.nodes.forEach(n => (columns[depth[n.id]] = columns[depth[n.id]] || []).push(n.id));
    return {depth: depth, columns: columns, byId: byId};
  }

  PG.drawGraph = function (svg, graph, onWire) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!graph) { svg.setAttribute("height", 40); return; }
    const {depth, columns} = layout(graph);
    const colW = 170, rowH = 62, maxRows = Math.max(...Object.values(columns).map(c => c.length));
    const H = Math.max(160, maxRows * rowH + 40), nCols = Math.max(...Object.values(depth)) + 1;
    const W = nCols * colW + 130;
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    const xy = {};
    Object.entries(columns).forEach(([d, ids]) => {
      ids.forEach((id, i) => { xy[id] = [50 + d * colW, (H - ids.length * rowH) / 2 + i * rowH + rowH / 2]; });
    });
    const defs = el("defs", {});
    const marker = el("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6,
                                 markerHeight: 6, orient: "auto-start-reverse"});
    marker.appendChild(el("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "#667085"}));
    defs.appendChild(marker);
    svg.appendChild(defs);
    const half = id => graph.nodes.find(n => n.id === id).kind === "input" ? 26 : 34;
    const wiresG = el("g", {}), nodesG = el("g", {});
    svg.appendChild(wiresG); svg.appendChild(nodesG);
    graph.wires.forEach(w => {
      const [x1, y1] = xy[w.source];
      const [x2, y2] = w.target === null ? [x1 + colW - 20, y1] : xy[w.target];
      const sx = x1 + half(w.source), ex = w.target === null ? x2 : x2 - half(w.target);
      const g = el("g", {class: "wire", style: "cursor: pointer"});
      g.appendChild(el("path", {d: `M ${sx} ${y1} C ${sx + 50} ${y1}, ${ex - 50} ${y2}, ${ex} ${y2}`,
                                fill: "none", stroke: "#98a2b3", "stroke-width": 1.4, "marker-end": "url(#arrow)"}));
      g.appendChild(el("path", {d: `M ${sx} ${y1} C ${sx + 50} ${y1}, ${ex - 50} ${y2}, ${ex} ${y2}`,
                                fill: "none", stroke: "transparent", "stroke-width": 12}));
      const mx = (sx + ex) / 2, my = (y1 + y2) / 2;
      const short = arr => arr && arr.data.length <= 1 ? PG.arrayText(arr, 1) : arr ? PG.arrayText(arr, 2) : "";
      g.appendChild(el("text", {x: mx, y: my - 5, "text-anchor": "middle", "font-size": 10.5, fill: GREEN},
                       short(w.value)));
      if (w.grad) g.appendChild(el("text", {x: mx, y: my + 12, "text-anchor": "middle", "font-size": 10.5, fill: RED},
                                   short(w.grad)));
      g.appendChild(el("title", {}, "value " + fullText(w.value) + "\ngradient " + fullText(w.grad)));
      g.addEventListener("click", () => onWire && onWire(w, graph));
      wiresG.appendChild(g);
    });
    graph.nodes.forEach(n => {
      const [x, y] = xy[n.id];
      if (n.kind === "input") {
        nodesG.appendChild(el("rect", {x: x - 26, y: y - 14, width: 52, height: 28, rx: 3, fill: "#fff",
                                       stroke: "#344054", "stroke-width": 1.3}));
      } else {
        nodesG.appendChild(el("rect", {x: x - 34, y: y - 15, width: 68, height: 30, rx: 15, fill: "#eef4ff",
                                       stroke: "#2f6fd6", "stroke-width": 1.3}));
      }
      const label = n.label.length > 11 ? n.label.slice(0, 10) + "…" : n.label;
      nodesG.appendChild(el("text", {x: x, y: y + 4, "text-anchor": "middle", "font-size": 11.5, fill: "#1f2933"},
                            label));
      if (n.kind === "op" && n.name) {
        nodesG.appendChild(el("text", {x: x, y: y - 20, "text-anchor": "middle", "font-size": 10, fill: "#667085"},
                              n.name));
      }
    });
    const root = graph.wires.find(w => w.target === null);
    const [rx, ry] = xy[root.source];
    svg.appendChild(el("text", {x: rx + colW - 14, y: ry + 4, "font-size": 12, "font-weight": 600, fill: "#1f2933"},
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
