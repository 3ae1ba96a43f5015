// Math for reading: find the formulas of a text (in code points, like every offset on this
// page) and draw them with KaTeX (vendored under /static/katex, loaded by index.html as
// window.katex). The source text stays the truth: a formula KaTeX cannot parse is shown as
// its source, and nothing here ever changes an offset the reviewer works with.

const DISPLAY_ENVIRONMENTS = new Set(["equation", "equation*", "align", "align*", "aligned", "gather",
  "gather*", "gathered", "alignat", "alignat*", "split", "multline", "multline*", "cases", "array",
  "matrix", "pmatrix", "bmatrix", "vmatrix", "Vmatrix"]);
const MAX_FORMULA_POINTS = 4000;  // an opener with no closer nearby is text, not a formula
const KATEX_OPTIONS = { throwOnError: true, trust: false, strict: "ignore", maxSize: 50, maxExpand: 1000,
  output: "htmlAndMathml" };

function startsWith(points, at, text) {
  for (let i = 0; i < text.length; i += 1) if (points[at + i] !== text[i]) return false;
  return true;
}

function find(points, from, text, limit) {
  const last = Math.min(points.length - text.length, limit);
  for (let at = from; at <= last; at += 1) if (startsWith(points, at, text)) return at;
  return -1;
}

function blankLine(points, start, end) {
  for (let at = start; at + 1 < end; at += 1) if (points[at] === "\n" && points[at + 1] === "\n") return true;
  return false;
}

/** A `$…$` closer for the opener at `open`: not after a space or a backslash, not before a digit. */
function dollarClose(points, open, limit) {
  const first = points[open + 1];
  if (first === undefined || /\s/u.test(first) || first === "$") return -1;
  for (let at = open + 1; at < Math.min(points.length, limit); at += 1) {
    if (points[at] === "\\") { at += 1; continue; }
    if (points[at] === "\n" && points[at + 1] === "\n") return -1;
    if (points[at] === "$") {
      return /\s/u.test(points[at - 1]) || /[0-9]/.test(points[at + 1] || "") ? -1 : at;
    }
  }
  return -1;
}

/**
 * The formulas of `points` (an array of code points), in order and never overlapping:
 * [{start, end, tex, display}], start/end in code points around the delimiters.
 * Delimiters: \( \), \[ \], $$ $$, $ $, and \begin{env} … \end{env} for math environments.
 */
export function mathRegions(points) {
  const regions = [];
  let at = 0;
  while (at < points.length) {
    const point = points[at];
    const limit = at + MAX_FORMULA_POINTS;
    let region = null;
    if (point === "\\" && (points[at + 1] === "(" || points[at + 1] === "[")) {
      const inline = points[at + 1] === "(";
      const close = find(points, at + 2, inline ? "\\)" : "\\]", limit);
      if (close >= 0 && !(inline && blankLine(points, at, close))) {
        region = { start: at, end: close + 2, tex: points.slice(at + 2, close).join(""), display: !inline };
      }
    } else if (point === "\\" && startsWith(points, at, "\\begin{")) {
      const nameEnd = find(points, at + 7, "}", at + 40);
      const name = nameEnd >= 0 ? points.slice(at + 7, nameEnd).join("") : "";
      const closer = `\\end{${name}}`;
      const close = DISPLAY_ENVIRONMENTS.has(name) ? find(points, nameEnd + 1, closer, limit) : -1;
      if (close >= 0) {
        const end = close + closer.length;
        region = { start: at, end, tex: points.slice(at, end).join(""), display: true };
      }
    } else if (point === "\\") {
      at += 2;  // an escaped character (\$ is a dollar sign, not a delimiter)
      continue;
    } else if (point === "$" && points[at + 1] === "$") {
      const close = find(points, at + 2, "$$", limit);
      if (close > at + 2) region = { start: at, end: close + 2, tex: points.slice(at + 2, close).join(""), display: true };
    } else if (point === "$") {
      const close = dollarClose(points, at, limit);
      if (close >= 0) region = { start: at, end: close + 1, tex: points.slice(at + 1, close).join(""), display: false };
    }
    if (region && region.tex.trim()) {
      regions.push(region);
      at = region.end;
    } else {
      at += point === "$" && points[at + 1] === "$" ? 2 : 1;
    }
  }
  return regions;
}

/** One formula drawn by KaTeX, or its source (class math-error, the reason as its title). */
export function formulaNode(region, source) {
  const node = document.createElement("span");
  node.className = region.display ? "math display" : "math";
  node.dataset.start = region.start;
  node.dataset.end = region.end;
  try {
    if (!window.katex) throw new Error("KaTeX did not load");
    window.katex.render(region.tex, node, { ...KATEX_OPTIONS, displayMode: region.display });
  } catch (error) {
    node.replaceChildren(source);
    node.className = "math math-error";
    node.title = `shown as source: ${error && error.message ? error.message : error}`;
  }
  return node;
}

/**
 * Reading content for points[start:end]: text nodes and drawn formulas. `regions` are the
 * text's formulas; only those wholly inside [start, end) are drawn. `cache` (a Map) keeps
 * drawn formulas by offset, so redrawing after an edit copies nodes instead of running KaTeX.
 */
export function readingNodes(points, regions, start, end, cache) {
  const nodes = [];
  let at = start;
  for (const region of regions) {
    if (region.end <= start || region.start < start) continue;
    if (region.start >= end || region.end > end) break;
    if (region.start > at) nodes.push(points.slice(at, region.start).join(""));
    if (!cache.has(region.start)) {
      cache.set(region.start, formulaNode(region, points.slice(region.start, region.end).join("")));
    }
    nodes.push(cache.get(region.start).cloneNode(true));
    at = region.end;
  }
  if (at < end) nodes.push(points.slice(at, end).join(""));
  return nodes;
}

/**
 * Pieces of the reading view: the spans, each widened to whole formulas (a span that starts or
 * ends inside a formula highlights all of it here; the source view keeps the exact offsets),
 * and the text between them. [{start, end, span}] with span the span's index or null.
 */
export function readingPieces(spans, regions, length) {
  const enclosing = (point) => regions.find((r) => r.start < point && point < r.end);
  const pieces = [];
  let at = 0;
  spans.forEach((span, index) => {
    const opening = enclosing(span.start);
    const closing = enclosing(span.end);
    const start = Math.max(opening ? opening.start : span.start, at);
    const end = Math.max(closing ? closing.end : span.end, start);
    if (end <= start) return;  // a formula shared with the span before: highlighted with that one
    if (start > at) pieces.push({ start: at, end: start, span: null });
    pieces.push({ start, end, span: index });
    at = end;
  });
  if (at < length) pieces.push({ start: at, end: length, span: null });
  return pieces;
}

/** A short beginning of `text` for the queue, not cut inside a formula. */
export function snippet(text, limit = 140) {
  const points = Array.from(text.replace(/\s+/gu, " ").trim());
  if (points.length <= limit) return points.join("");
  let cut = limit;
  const inside = mathRegions(points).find((r) => r.start < cut && cut < r.end);
  if (inside) cut = inside.end <= limit + 60 ? inside.end : inside.start;
  return `${points.slice(0, cut).join("").trimEnd()} …`;
}
