// The review page: load the queue, open a trace, turn mouse selections and keys into span
// edits, and send decisions. The server owns the truth: each edit is sent at once (in order,
// one at a time) and the spans it answers with replace the local ones.
import { mathRegions } from "./math.js";
import { codePointIndex, codePoints, trimmed } from "./offsets.js";
import { $, note, renderDocument, renderQueue, renderSpanList, renderTrace } from "./view.js";

const RESIZE_DELAY_MS = 400;  // key repeats while resizing become one "resize" edit

const state = {
  reviewer: "", queue: [], progress: null,
  current: null, points: [], spans: [], selected: null, math: { regions: [], cache: new Map() },
  pendingResize: null, resizeTimer: null, deciding: false,
};

// The session is an HttpOnly cookie the server set when the printed link was opened: this page
// never sees a token, and the address bar never held one (the server redirected to a clean URL).
async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  let data;
  try { data = await response.json(); } catch { data = {}; }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// Writes go out one after another, so the server sees edits in the order they were made.
let writes = Promise.resolve();
function write(task) {
  const result = writes.then(task).catch((error) => { note(error.message, "error"); return undefined; });
  writes = result;
  return result;
}

function setSpans(spans, keep) {
  state.spans = spans;
  const index = keep ? spans.findIndex((s) => s.start === keep.start && s.end === keep.end) : -1;
  state.selected = index >= 0 ? index : null;
  renderTrace(state);
  renderSpanList(state);
}

function sendEdit(body, keep) {
  const traceId = state.current.trace_id;
  return write(async () => {
    try {
      const data = await api("POST", "/api/edit", { trace_id: traceId, ...body });
      if (state.current.trace_id === traceId && !state.pendingResize) setSpans(data.spans, keep);
      note(`saved (${data.edits} edit${data.edits === 1 ? "" : "s"} on this trace)`);
      return data;
    } catch (error) {
      if (state.current.trace_id === traceId) await reloadSpans(keep);  // back in step with the server
      throw error;
    }
  });
}

async function reloadSpans(keep) {
  const data = await api("GET", `/api/trace?id=${encodeURIComponent(state.current.trace_id)}`);
  state.current = data;
  setSpans(data.spans, keep);
}

function flushResize() {
  clearTimeout(state.resizeTimer);
  const pending = state.pendingResize;
  state.pendingResize = null;
  if (!pending) return writes;
  const { span, previousStart, previousEnd } = pending;
  if (span.start === previousStart && span.end === previousEnd) return writes;
  return sendEdit({ action: "resize", previous_start: previousStart, previous_end: previousEnd,
    start: span.start, end: span.end }, { start: span.start, end: span.end });
}

function nudge(edge, delta) {
  if (state.selected === null) { note("click a span first, then move its ends"); return; }
  const index = state.selected;
  const span = state.spans[index];
  const start = span.start + (edge === "start" ? delta : 0);
  const end = span.end + (edge === "end" ? delta : 0);
  const low = index > 0 ? state.spans[index - 1].end : 0;
  const high = index + 1 < state.spans.length ? state.spans[index + 1].start : state.points.length;
  if (start < low || end > high || start >= end) return;
  if (!state.pendingResize || state.pendingResize.span !== span) {
    flushResize();
    state.pendingResize = { span, previousStart: span.start, previousEnd: span.end };
  }
  span.start = start;
  span.end = end;
  renderTrace(state);
  renderSpanList(state);
  state.resizeTimer = setTimeout(flushResize, RESIZE_DELAY_MS);
}

function select(index) {
  state.selected = index;
  renderTrace(state);
  renderSpanList(state);
  if (index !== null) {  // both views show the selected span
    for (const view of ["#trace", "#reading"]) {
      const mark = document.querySelector(`${view} mark[data-span="${index}"]`);
      if (mark) mark.scrollIntoView({ block: "nearest" });
    }
  }
}

function removeSelected() {
  if (state.selected === null) { note("click a span first to remove it"); return; }
  flushResize();
  const span = state.spans[state.selected];
  sendEdit({ action: "remove", previous_start: span.start, previous_end: span.end }, null);
}

// A DOM boundary point inside #trace, as a code-point offset into the trace. Every child of
// #trace is a segment with data-start / data-end (code points) holding one text node.
function boundaryOffset(container, offset, roundUp) {
  const box = $("#trace");
  if (container.nodeType === Node.TEXT_NODE) {
    const segment = container.parentElement.closest("[data-start]");
    return Number(segment.dataset.start) + codePointIndex(container.data, offset, roundUp);
  }
  if (container === box) {
    return offset < box.childNodes.length ? Number(box.childNodes[offset].dataset.start) : state.points.length;
  }
  const segment = container.closest("[data-start]");
  return Number(offset === 0 ? segment.dataset.start : segment.dataset.end);
}

function selectionOffsets(range) {
  const box = $("#trace");
  if (!range.intersectsNode(box)) return null;
  const whole = document.createRange();
  whole.selectNodeContents(box);
  const start = range.compareBoundaryPoints(Range.START_TO_START, whole) <= 0
    ? 0 : boundaryOffset(range.startContainer, range.startOffset, false);
  const end = range.compareBoundaryPoints(Range.END_TO_END, whole) >= 0
    ? state.points.length : boundaryOffset(range.endContainer, range.endOffset, true);
  return trimmed(state.points, start, end);
}

function onMouseUp(event) {
  if (!state.current) return;
  const selection = window.getSelection();
  if (!selection.rangeCount || selection.isCollapsed) {
    if (!event.target.closest || !event.target.closest("#trace, #reading")) return;
    const mark = event.target.closest("mark[data-span]");
    select(mark ? Number(mark.dataset.span) : null);
    return;
  }
  const range = selection.getRangeAt(0);
  if (range.intersectsNode($("#reading"))) {  // rendered math has no offsets: spans come from the source
    note("the reading view is for reading: select in the source view to add a span");
    return;
  }
  const offsets = selectionOffsets(range);
  if (!offsets) return;
  selection.removeAllRanges();
  const [start, end] = offsets;
  if (start >= end) return;
  const clash = state.spans.find((s) => start < s.end && s.start < end);
  if (clash) {
    note(`the selection overlaps span ${clash.start}–${clash.end}: remove or resize that one`, "error");
    return;
  }
  flushResize();
  sendEdit({ action: "add", start, end }, { start, end });
}

async function open(traceId) {
  await flushResize();
  await writes;
  const data = await api("GET", `/api/trace?id=${encodeURIComponent(traceId)}`);
  state.current = data;
  state.points = codePoints(data.trace);
  state.math = { regions: mathRegions(state.points), cache: new Map() };
  if (state.points.length !== data.length) {
    note(`the page counts ${state.points.length} characters, the server ${data.length}: ` +
      "offsets would be wrong", "error");
  } else {
    note(data.working_from === "draft" ? "your unsaved edits on this trace are restored" : "");
  }
  state.spans = data.spans;
  state.selected = null;
  history.replaceState(null, "", `${location.pathname}#id=${encodeURIComponent(traceId)}`);
  renderDocument(state);
  $("#document").scrollTop = 0;
}

function currentIndex() {
  return state.queue.findIndex((item) => item.trace_id === state.current.trace_id);
}

function go(step) {
  const target = state.queue[currentIndex() + step];
  if (target) open(target.trace_id).catch((error) => note(error.message, "error"));
  else note(step > 0 ? "this is the last trace in the queue" : "this is the first trace in the queue");
}

function skip() {
  const here = currentIndex();
  for (let step = 1; step < state.queue.length; step += 1) {
    const item = state.queue[(here + step) % state.queue.length];
    if (!item.decision) { open(item.trace_id).catch((error) => note(error.message, "error")); return; }
  }
  note("no other trace is waiting for a decision");
}

async function decide(decision) {
  if (state.deciding) return;  // a second key press before the page has moved on decides nothing
  state.deciding = true;
  try {
    await sendDecision(decision);
  } finally {
    state.deciding = false;
  }
}

async function sendDecision(decision) {
  flushResize();
  const traceId = state.current.trace_id;
  const data = await write(() => api("POST", "/api/decision", { trace_id: traceId, decision }));
  if (!data) return;
  const item = state.queue.find((entry) => entry.trace_id === traceId);
  item.decision = data.decision;
  state.progress = data.progress;
  if (data.next) {
    await open(data.next);
    note(`${decision}: ${traceId}`);
  } else {
    await open(traceId);
    note(`${decision}: ${traceId}. Every trace in the queue has your decision.`, "done");
  }
}

const KEYS = {
  a: () => decide("accepted"), r: () => decide("rejected"), s: skip, n: () => go(1), p: () => go(-1),
  Delete: removeSelected, Backspace: removeSelected, "[": () => nudge("start", -1), "]": () => nudge("start", 1),
  j: () => select(state.spans.length ? Math.min((state.selected ?? -1) + 1, state.spans.length - 1) : null),
  k: () => select(state.spans.length ? Math.max((state.selected ?? state.spans.length) - 1, 0) : null),
  o: resetToJudge, "?": () => toggleHelp(), Escape: () => { toggleHelp(false); select(null); },
};
const REPEATABLE = new Set(["[", "]", "j", "k"]);

function onKeyDown(event) {
  if (!state.current || event.ctrlKey || event.metaKey || event.altKey) return;  // leave browser shortcuts alone
  if (event.target.closest && event.target.closest("input, textarea, select")) return;
  let action = null;
  if (event.shiftKey && event.key === "ArrowLeft") action = () => nudge("end", -1);
  else if (event.shiftKey && event.key === "ArrowRight") action = () => nudge("end", 1);
  else if (KEYS[event.key] && (!event.repeat || REPEATABLE.has(event.key))) action = KEYS[event.key];
  else if (KEYS[event.key]) { event.preventDefault(); return; }  // holding "a" must not accept a row of traces
  if (!action) return;
  event.preventDefault();
  Promise.resolve(action()).catch((error) => note(error.message, "error"));
}

function resetToJudge() {
  flushResize();
  sendEdit({ action: "reset" }, null);
}

function toggleHelp(show) {
  const help = $("#help");
  help.hidden = show === undefined ? !help.hidden : !show;
}

function onClick(event) {
  const button = event.target.closest("button");
  const queueItem = event.target.closest("#queue-list li");
  if (queueItem) { open(queueItem.dataset.traceId).catch((error) => note(error.message, "error")); return; }
  const listItem = event.target.closest("#span-list li");
  if (listItem && !button) { select(Number(listItem.dataset.span)); return; }
  if (!button) return;
  const buttons = {
    accept: () => decide("accepted"), reject: () => decide("rejected"), skip, next: () => go(1), prev: () => go(-1),
    reset: resetToJudge, "help-button": () => toggleHelp(), "help-close": () => toggleHelp(false),
  };
  if (buttons[button.id]) {
    Promise.resolve(buttons[button.id]()).catch((error) => note(error.message, "error"));
    return;
  }
  if (button.dataset.action) {
    state.selected = Number(button.dataset.span);
    const [edge, direction] = button.dataset.action.split("-");
    if (edge === "remove") removeSelected();
    else nudge(edge, direction === "left" ? -1 : 1);
  }
}

async function start() {
  const queue = await api("GET", "/api/queue");
  Object.assign(state, { queue: queue.items, progress: queue.progress, reviewer: queue.reviewer });
  $("#reviewer").textContent = `reviewer: ${queue.reviewer}`;
  renderQueue(state);
  const wanted = new URLSearchParams(location.hash.slice(1)).get("id");
  const known = state.queue.some((item) => item.trace_id === wanted);
  await open(known ? wanted : queue.start || state.queue[0].trace_id);
  if (!queue.start && !known) note("every trace in this queue already has your decision", "done");
  document.addEventListener("mouseup", onMouseUp);
  document.addEventListener("keydown", onKeyDown);
  document.addEventListener("click", onClick);
  document.body.dataset.ready = "true";  // for tests and scripts: the first trace is on screen
}

start().catch((error) => note(error.message, "error"));
