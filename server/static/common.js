// Shared by the trace viewer's pages: the API key and authenticated GETs of the /v1 API.
// The key arrives in the fragment (#key=...), which never reaches the server; it is kept in
// this tab's sessionStorage and sent as a bearer header, never put in a URL the server sees.
"use strict";

const KEY_STORE = "ponder.apiKey";

class NeedKey extends Error {}

function takeKeyFromFragment() {
  const match = window.location.hash.match(/(?:^#|&)key=([^&]*)/);
  if (match) {
    sessionStorage.setItem(KEY_STORE, decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORE);
}

async function apiGet(path) {
  const key = apiKey();
  const headers = key ? { Authorization: "Bearer " + key } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    throw new NeedKey(key ? "The server refused this key." : "This server needs an API key.");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || response.statusText;
    throw new Error(response.status + ": " + message);
  }
  return body;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

// Runs `load`; on a missing or refused key shows the key form, which stores a key and retries.
function withKey(load) {
  const form = document.getElementById("key-form");
  const run = async () => {
    showError("");
    try {
      form.hidden = true;
      await load();
    } catch (error) {
      if (error instanceof NeedKey) {
        form.hidden = false;
        document.getElementById("key-reason").textContent = error.message;
      } else {
        showError(error.message || String(error));
      }
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, document.getElementById("key-input").value.trim());
    run();
  });
  takeKeyFromFragment();
  run();
}

function formatTime(epochSeconds) {
  return new Date(epochSeconds * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function verdict(isVerified) {
  if (isVerified === true) return ["verified", "ok"];
  if (isVerified === false) return ["wrong", "bad"];
  return ["unchecked", "none"];
}
