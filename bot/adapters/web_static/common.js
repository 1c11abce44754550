// What every page's script shares (loaded first, each page's own script after it): finding
// an element, this site's JSON API, the page's error line and text spans.
"use strict";

const $ = (id) => document.getElementById(id);

// A JSON answer from this site's API; a refusal throws an Error with the API's sentence.
async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const fallback = `The server answered ${response.status}. Please try again.`;
    throw new Error(body && body.error ? body.error : fallback);
  }
  return body;
}

// The page's error line (#error): the text, or hidden when there is none.
function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}
