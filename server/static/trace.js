// GET /traces/{id}: draws the search tree of GET /v1/traces/{id} and replays it.
// Columns are depths, rows are leaves, a parent sits level with its first child. Node marks
// (is_chosen, is_pruned, seq) come from the server (search/trace_marks.py); traces recorded
// before it had them get the same marks here, and depth-first order for the replay.
"use strict";

const BOX_W = 214;
const BOX_H = 68;
const DUPLICATE_H = 24;
const GAP_X = 44;
const GAP_Y = 12;
const PAD = 16;
const SVG_NS = "http://www.w3.org/2000/svg";

let total = 0;
let shown = 0;
let timer = null;

function traceIdFromPath() {
  return decodeURIComponent(window.location.pathname.split("/").filter(Boolean)[1] || "");
}

function fixed(value, digits) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

function isUsableReply(node) {
  return node.is_terminal && node.finish_reason !== "length" && !node.is_duplicate;
}

// Marks for traces recorded before the server set them: the same definitions as the server's.
function ensureMarks(root, steps) {
  if (root.is_chosen !== undefined) return;
  let order = 0;
  const hasReply = (node) => {
    node.seq = node === root ? 0 : ++order;
    const below = node.children.map(hasReply).some(Boolean);
    node.has_reply = isUsableReply(node) || below;
    return node.has_reply;
  };
  hasReply(root);
  const wanted = steps.slice();
  let node = root;
  node.is_chosen = wanted.length > 0;
  while (wanted.length && node) {
    node = node.children.find((c) => !c.is_duplicate && (c.text === wanted[0] || !c.text.trim()));
    if (node) {
      node.is_chosen = true;
      if (node.text.trim()) wanted.shift();
    }
  }
  const mark = (n) => {
    n.is_chosen = Boolean(n.is_chosen);
    n.is_pruned = n !== root && !n.is_chosen && !n.has_reply;
    n.children.forEach(mark);
  };
  mark(root);
}

// Positions every node: {node, depth, parent, x, y, h}. A leaf takes the next free row, a parent
// is level with its first child; duplicates (kept for token accounting only) take a thin row.
function layout(root) {
  const placed = [];
  let nextY = PAD;
  const place = (node, depth, parent) => {
    const h = node.is_duplicate ? DUPLICATE_H : BOX_H;
    const entry = { node, depth, parent, x: PAD + depth * (BOX_W + GAP_X), y: nextY, h };
    placed.push(entry);
    node.children.forEach((child) => place(child, depth + 1, entry));
    nextY = Math.max(nextY, entry.y + h + GAP_Y);
  };
  place(root, 0, null);
  return { placed, height: nextY - GAP_Y + PAD };
}

function nodeClasses(node, isRoot) {
  const marks = { root: isRoot, chosen: node.is_chosen, pruned: node.is_pruned, terminal: node.is_terminal,
    verified: node.is_verified, duplicate: node.is_duplicate, cut: node.finish_reason === "length" };
  return ["node"].concat(Object.keys(marks).filter((name) => marks[name])).join(" ");
}

function nodeBox(entry, question) {
  const node = entry.node;
  const isRoot = entry.parent === null;
  const box = el("div", nodeClasses(node, isRoot));
  box.style.left = entry.x + "px";
  box.style.top = entry.y + "px";
  box.style.height = entry.h + "px";
  box.dataset.seq = String(node.seq || 0);
  box.tabIndex = 0;
  box.append(el("div", "step", isRoot ? question : node.text.trim() || "(end of reply)"));
  const scores = [];
  if (!isRoot) scores.push("prm " + fixed(node.prm_score, 2));
  if (node.visits) scores.push("N " + node.visits + " · V " + fixed(node.value, 2));
  box.append(el("div", "scores", scores.join(" · ") || "prompt"));
  const tokens = [];
  if (!isRoot) tokens.push(node.num_tokens + " tok");
  const computed = node.num_prompt_tokens_computed || 0;
  const reused = node.num_prompt_tokens_reused || 0;
  if (computed || reused) tokens.push("prefill " + computed + " · reused " + reused);
  box.append(el("div", "tokens", tokens.join(" · ")));
  box.title = isRoot ? "the prompt" : "step " + node.seq + ": " + node.text;
  box.addEventListener("click", () => showDetails(entry, question));
  return box;
}

function edgePath(parent, child) {
  const x1 = parent.x + BOX_W;
  const y1 = parent.y + parent.h / 2;
  const x2 = child.x;
  const y2 = child.y + child.h / 2;
  const mid = (x1 + x2) / 2;
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
  const chosen = parent.node.is_chosen && child.node.is_chosen;
  path.setAttribute("class", "edge" + (chosen ? " chosen" : "") + (child.node.is_pruned ? " pruned" : ""));
  path.dataset.seq = String(child.node.seq || 0);
  return path;
}

function drawTree(root, question) {
  const { placed, height } = layout(root);
  const maxDepth = Math.max(...placed.map((entry) => entry.depth));
  const width = PAD * 2 + (maxDepth + 1) * (BOX_W + GAP_X) - GAP_X;
  const canvas = document.getElementById("canvas");
  canvas.replaceChildren();
  canvas.style.width = width + "px";
  canvas.style.height = height + "px";
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  placed.filter((entry) => entry.parent).forEach((entry) => svg.append(edgePath(entry.parent, entry)));
  canvas.append(svg);
  placed.forEach((entry) => canvas.append(nodeBox(entry, question)));
  canvas.dataset.numNodes = String(placed.length - 1);
  return placed.length - 1;
}

function showDetails(entry, question) {
  const node = entry.node;
  const panel = document.getElementById("details");
  panel.replaceChildren(el("h2", "", entry.parent ? "step " + node.seq + " (depth " + entry.depth + ")" : "prompt"));
  panel.append(el("pre", "full-text", entry.parent ? node.text || "(end of reply)" : question));
  const facts = el("dl", "facts");
  const rows = [
    ["PRM score", fixed(node.prm_score, 4)], ["prior", fixed(node.prior, 4)], ["visits", node.visits],
    ["value", fixed(node.value, 4)], ["log-prob", fixed(node.logprob, 4)], ["tokens", node.num_tokens],
    ["prefill computed", node.num_prompt_tokens_computed || 0], ["prefill reused", node.num_prompt_tokens_reused || 0],
    ["finish", node.finish_reason || "-"], ["chosen", node.is_chosen ? "yes" : "no"],
    ["pruned", node.is_pruned ? "yes" : "no"], ["verified", node.is_verified ? "yes" : "no"],
    ["duplicate", node.is_duplicate ? "yes" : "no"], ["children", node.children.length],
  ];
  rows.forEach(([name, value]) => facts.append(el("dt", "", name), el("dd", "", value)));
  panel.append(facts);
  panel.hidden = false;
}

function setShown(count) {
  shown = count;
  document.querySelectorAll("#canvas [data-seq]").forEach((item) => {
    const seq = Number(item.dataset.seq);
    item.classList.toggle("future", seq > count);
    item.classList.toggle("latest", seq === count && count > 0 && count < total);
  });
  document.getElementById("step").value = String(count);
  document.getElementById("step-label").textContent = count + " / " + total;
}

function stopReplay() {
  if (timer !== null) clearInterval(timer);
  timer = null;
  document.getElementById("play").textContent = "Replay";
}

function startReplay() {
  if (shown >= total) setShown(0);
  document.getElementById("play").textContent = "Pause";
  timer = setInterval(() => {
    if (shown >= total) stopReplay();
    else setShown(shown + 1);
  }, Number(document.getElementById("speed").value));
}

function statRows(trace) {
  const result = trace.tree;
  const stats = result.stats || {};
  const tree = result.tree || {};
  return [
    ["model", trace.model + (trace.version ? " · " + trace.version : "")], ["strategy", trace.strategy],
    ["created", formatTime(trace.created)], ["budget", (trace.settings.budget_tokens || "-") + " tokens"],
    ["nodes", tree.num_nodes], ["tokens generated", stats.num_tokens_generated],
    ["prompt tokens computed", stats.num_prompt_tokens_computed], ["prompt tokens reused", stats.num_prompt_tokens_reused],
    ["PRM calls", stats.num_prm_calls], ["engine calls", stats.num_engine_calls],
    ["elapsed", fixed(stats.elapsed_s, 2) + " s"], ["score", fixed(result.score, 3)],
  ];
}

function showSummary(trace, question) {
  document.getElementById("trace-id").textContent = trace.id;
  document.getElementById("question").textContent = question;
  document.getElementById("answer").textContent = trace.answer || "(none)";
  const [label, tone] = verdict(trace.is_verified);
  document.getElementById("verdict").replaceChildren(el("span", "badge " + tone, label));
  const stats = document.getElementById("stats");
  stats.replaceChildren();
  statRows(trace).forEach(([name, value]) => stats.append(el("dt", "", name), el("dd", "", value)));
  document.getElementById("summary").hidden = false;
}

async function loadTrace() {
  const trace = await apiGet("/v1/traces/" + encodeURIComponent(traceIdFromPath()));
  const users = trace.messages.filter((message) => message.role === "user");
  const question = users.length ? users[users.length - 1].content : "(prompt)";
  const root = trace.tree.tree.root;
  ensureMarks(root, trace.tree.steps || []);
  showSummary(trace, question);
  total = drawTree(root, question);
  document.getElementById("step").max = String(total);
  document.getElementById("controls").hidden = false;
  setShown(total);
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("play").addEventListener("click", () => (timer === null ? startReplay() : stopReplay()));
  document.getElementById("all").addEventListener("click", () => {
    stopReplay();
    setShown(total);
  });
  document.getElementById("step").addEventListener("input", (event) => {
    stopReplay();
    setShown(Number(event.target.value));
  });
  withKey(loadTrace);
});
