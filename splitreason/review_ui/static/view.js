// Drawing the page from the state. Every piece of trace, problem or judge text goes in
// through text nodes, never innerHTML: a trace that contains "<script>" shows those
// characters and runs nothing. Formulas are drawn by KaTeX (math.js), which builds its own
// nodes and allows no links or commands that reach outside (trust: false).
import { mathRegions, readingNodes, readingPieces, snippet } from "./math.js";

export const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);  // strings become text nodes
  return node;
}

/** The judge's span with exactly these offsets, else the first one it overlaps, else null. */
export function judgeOrigin(judgeSpans, span) {
  const same = judgeSpans.find((j) => j.start === span.start && j.end === span.end);
  if (same) return { kind: "judge", span: same };
  const overlapping = judgeSpans.find((j) => span.start < j.end && j.start < span.end);
  return overlapping ? { kind: "edited", span: overlapping } : { kind: "added", span: null };
}

function describe(origin) {
  if (origin.kind === "added") return "added by you";
  const { score, reason, match } = origin.span;
  const what = `score ${score.toFixed(2)} · ${match}${reason ? ` · ${reason}` : ""}`;
  return origin.kind === "judge" ? `judge: ${what}` : `resized from the judge's span (${what})`;
}

function segment(points, start, end, index, state) {
  const text = points.slice(start, end).join("");
  if (index === null) return element("span", { dataset: { start, end } }, text);
  const origin = judgeOrigin(state.current.judge_spans, state.spans[index]);
  const classes = ["hl", origin.kind, index === state.selected ? "selected" : ""].join(" ").trim();
  return element("mark", { class: classes, title: describe(origin), dataset: { start, end, span: index } }, text);
}

/** The reading view: the trace with its formulas drawn, the spans highlighted (widened to whole formulas). */
export function renderReading(state) {
  const { points, math } = state;
  const parts = readingPieces(state.spans, math.regions, points.length).map((piece) => {
    const nodes = readingNodes(points, math.regions, piece.start, piece.end, math.cache);
    const data = { start: piece.start, end: piece.end };
    if (piece.span === null) return element("span", { dataset: data }, ...nodes);
    const origin = judgeOrigin(state.current.judge_spans, state.spans[piece.span]);
    const classes = ["hl", origin.kind, piece.span === state.selected ? "selected" : ""].join(" ").trim();
    return element("mark", { class: classes, title: describe(origin), dataset: { ...data, span: piece.span } },
      ...nodes);
  });
  $("#reading").replaceChildren(...parts);
}

export function renderTrace(state) {
  renderReading(state);
  const parts = [];
  let at = 0;
  state.spans.forEach((span, index) => {
    if (span.start > at) parts.push(segment(state.points, at, span.start, null, state));
    parts.push(segment(state.points, span.start, span.end, index, state));
    at = span.end;
  });
  if (at < state.points.length) parts.push(segment(state.points, at, state.points.length, null, state));
  $("#trace").replaceChildren(...parts);
}

function preview(points, span, limit = 160) {
  const text = points.slice(span.start, span.end).join("");
  const chars = Array.from(text);
  return chars.length > limit ? `${chars.slice(0, limit).join("")}…` : text;
}

export function renderSpanList(state) {
  const items = state.spans.map((span, index) => {
    const origin = judgeOrigin(state.current.judge_spans, span);
    const tool = (action, label, title) => element("button", { dataset: { action, span: index }, title }, label);
    const classes = `${origin.kind}${index === state.selected ? " selected" : ""}`;
    const head = `${index + 1} · ${span.start}–${span.end} · ${span.end - span.start} chars`;
    return element("li", { class: classes, dataset: { span: index } },
      element("div", { class: "span-head" }, head),
      element("div", { class: "span-reason" }, describe(origin)),
      element("div", { class: "span-text" }, preview(state.points, span)),
      element("div", { class: "span-tools" },
        "start ", tool("start-left", "◀", "Move the start left ([)"),
        tool("start-right", "▶", "Move the start right (])"),
        " end ", tool("end-left", "◀", "Move the end left (Shift+←)"),
        tool("end-right", "▶", "Move the end right (Shift+→)"),
        " ", tool("remove", "Remove", "Remove this span (Delete)")));
  });
  $("#span-list").replaceChildren(...items);
  $("#span-count").textContent = `(${state.spans.length})`;
}

export function renderDocument(state) {
  const trace = state.current;
  const total = state.queue.length;
  $("#trace-id").textContent = trace.trace_id;
  $("#trace-meta").textContent = [
    `${trace.position + 1} of ${total}`, `confidence ${trace.confidence.toFixed(3)}`,
    `coverage ${(100 * trace.coverage).toFixed(1)}% (target ${(100 * trace.target_coverage).toFixed(0)}%)`,
    `${trace.status}: ${trace.reason_text}`, `judge ${trace.judge}`,
    trace.source ? `source ${trace.source}` : null, trace.problem_type,
  ].filter(Boolean).join(" · ");
  $("#problem").textContent = trace.problem;
  const problem = Array.from(trace.problem);
  $("#problem-reading").replaceChildren(...readingNodes(problem, mathRegions(problem), 0, problem.length, new Map()));
  const banner = $("#decision-banner");
  banner.hidden = !trace.decision;
  if (trace.decision) {
    banner.className = trace.decision.decision;
    banner.textContent = `You ${trace.decision.decision} this trace (${trace.decision.origin}, ` +
      `${trace.decision.reviewed_at}). Deciding again replaces that decision.`;
  }
  renderTrace(state);
  renderSpanList(state);
  renderQueue(state);
}

// Queue snippets are drawn once per trace and copied on every redraw of the queue; formulas in
// them are drawn only when the item scrolls into view (a queue may hold thousands of traces).
const snippets = new Map();
const drawSnippets = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    const box = entry.target;
    drawSnippets.unobserve(box);
    const cached = snippets.get(box.dataset.traceId);
    if (cached) { box.replaceWith(cached.cloneNode(true)); continue; }
    const points = Array.from(box.textContent);
    const inline = mathRegions(points).map((region) => ({ ...region, display: false }));  // one line, no blocks
    box.replaceChildren(...readingNodes(points, inline, 0, points.length, new Map()));
    box.dataset.drawn = "true";
    snippets.set(box.dataset.traceId, box.cloneNode(true));
  }
}, { root: document.querySelector("#queue") }) : null;

function queueSnippet(item) {
  const cached = snippets.get(item.trace_id);
  if (cached) return cached.cloneNode(true);
  const box = element("div", { class: "snippet", dataset: { traceId: item.trace_id } }, snippet(item.problem));
  if (drawSnippets) drawSnippets.observe(box);
  return box;
}

export function renderQueue(state) {
  const current = state.current ? state.current.trace_id : null;
  if (drawSnippets) drawSnippets.disconnect();  // the old items go; the new ones are observed below
  const items = state.queue.map((item, index) => element("li", {
    class: [item.decision || "open", item.trace_id === current ? "current" : ""].join(" ").trim(),
    dataset: { traceId: item.trace_id }, title: `${index + 1}. ${item.trace_id}`,
  },
  element("div", { class: "queue-head" },
    element("span", { class: "badge" }, { accepted: "✓", rejected: "✗" }[item.decision] || "·"),
    element("span", { class: "confidence", title: "the judge's confidence" }, item.confidence.toFixed(3)),
    element("span", { class: "reason", title: `routed to ${item.status}: ${item.reason}` }, item.reason_text)),
  queueSnippet(item)));
  $("#queue-list").replaceChildren(...items);
  const p = state.progress;
  $("#progress-text").textContent = `${p.reviewed} / ${p.total} reviewed · ${p.accepted} accepted · ` +
    `${p.rejected} rejected · ${p.remaining} remaining`;
  $("#progress-fill").style.width = `${p.total ? (100 * p.reviewed) / p.total : 0}%`;
  const here = document.querySelector("#queue-list li.current");
  if (here) here.scrollIntoView({ block: "nearest" });
}

export function note(text, kind = "info") {
  const box = $("#message");
  box.textContent = text;
  box.className = kind;
}
