// GET /traces: one page of GET /v1/traces at a time, filtered by model and age; each row links
// to the trace's tree. The filters live in the page's query string, so a filtered list is a link.
"use strict";

let nextCursor = null;

function filterParams() {
  const params = new URLSearchParams();
  const model = document.getElementById("filter-model").value.trim();
  const since = document.getElementById("filter-since").value;
  const limit = document.getElementById("filter-limit").value;
  if (model) params.set("model", model);
  if (since) params.set("since", String(Math.floor(new Date(since).getTime() / 1000)));
  if (limit) params.set("limit", limit);
  return params;
}

function restoreFilters() {
  const query = new URLSearchParams(window.location.search);
  document.getElementById("filter-model").value = query.get("model") || "";
  document.getElementById("filter-limit").value = query.get("limit") || "20";
  const since = Number(query.get("since"));
  if (since) {
    const local = new Date(since * 1000 - new Date().getTimezoneOffset() * 60000);
    document.getElementById("filter-since").value = local.toISOString().slice(0, 16);
  }
}

function traceRow(trace) {
  const row = el("tr", "trace-row");
  row.dataset.traceId = trace.id;
  const [label, tone] = verdict(trace.is_verified);
  row.append(
    el("td", "nowrap", formatTime(trace.created)),
    el("td", "", trace.model),
    el("td", "", trace.version || "-"),
    el("td", "", trace.strategy),
  );
  const outcome = el("td");
  outcome.append(el("span", "badge " + tone, label));
  const answer = el("td", "answer", trace.answer.split("\n").join(" | "));
  const open = el("td");
  const link = el("a", "open", "view tree");
  link.href = "/traces/" + encodeURIComponent(trace.id);
  open.append(link);
  row.append(outcome, answer, open);
  return row;
}

async function loadPage(isFirst) {
  const params = filterParams();
  if (!isFirst && nextCursor) params.set("after", nextCursor);
  const page = await apiGet("/v1/traces?" + params.toString());
  const body = document.querySelector("#traces tbody");
  if (isFirst) body.replaceChildren();
  page.data.forEach((trace) => body.append(traceRow(trace)));
  nextCursor = page.next;
  document.getElementById("more").hidden = !nextCursor;
  document.getElementById("empty").hidden = body.children.length > 0;
}

document.addEventListener("DOMContentLoaded", () => {
  restoreFilters();
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    history.replaceState(null, "", "/traces?" + filterParams().toString());
    loadPage(true).catch((error) => showError(error.message));
  });
  document.getElementById("more").addEventListener("click", () => {
    loadPage(false).catch((error) => showError(error.message));
  });
  withKey(() => loadPage(true));
});
