"use strict";
// The group song page: /together starts one; /together/TOKEN shows it, lets this browser
// join with a voice note, lets its starter close it, and plays the song once it is made.

const POLL_MS = 2000;
const token = (location.pathname.match(/^\/together\/([A-Za-z0-9_-]{43})$/) || [])[1];

function statusText(gathering) {
  const count = gathering.voices.length;
  if (gathering.song) return `The song is here: ${count} voices.`;
  if (gathering.status === "dropped") return "Closed without a song: it needs two voices.";
  if (gathering.status !== "open") return "Closed: the song is being made...";
  const minutes = Math.max(1, Math.round((Date.parse(gathering.closes_at) - Date.now()) / 60000));
  return `Gathering voices: ${count} of 6 so far; it closes in ${minutes} min.`;
}

function show(gathering) {
  $("gathering").hidden = false;
  $("gathering-status").textContent = statusText(gathering);
  $("join-link").textContent = location.origin + gathering.url;
  $("join-link").href = gathering.url;
  $("voices").replaceChildren(...gathering.voices.map((name) => {
    const item = document.createElement("li");
    item.textContent = name;
    return item;
  }));
  const open = gathering.status === "open";
  $("join-form").hidden = !open;
  $("join-button").textContent = gathering.joined ? "Send a new note instead" : "Join with this note";
  $("close-button").hidden = !(open && gathering.started_by_me);
  if (gathering.song && $("song").hidden) {
    $("song").src = gathering.song.audio_url;
    $("song").hidden = false;
  }
  return !gathering.song && gathering.status !== "dropped";
}

async function follow() {
  try {
    if (show(await api(`/api/together/${token}`))) setTimeout(follow, POLL_MS);
  } catch (error) {
    showError(error.message);
  }
}

async function join(event) {
  event.preventDefault();
  showError("");
  const name = $("join-name").value.trim();
  if (name) {
    try {
      await api("/api/name", { method: "POST", headers: { "Content-Type": "application/json" },
                               body: JSON.stringify({ name }) });
    } catch (error) {
      showError(error.message);
      return;
    }
  }
  const form = new FormData();
  form.append("audio", $("join-audio").files[0]);
  try {
    show(await api(`/api/together/${token}/voices`, { method: "POST", body: form }));
    $("join-audio").value = "";
  } catch (error) {
    showError(error.message);
  }
}

async function close() {
  showError("");
  try {
    show(await api(`/api/together/${token}/close`, { method: "POST" }));
  } catch (error) {
    showError(error.message);
  }
}

async function start() {
  showError("");
  try {
    const gathering = await api("/api/together", { method: "POST" });
    location.assign(gathering.url);
  } catch (error) {
    showError(error.message);
  }
}

async function knownName() {
  try {
    $("join-name").value = (await api("/api/name")).name || "";
  } catch (error) {
    // No name yet is fine: the credits say "a SingSong singer".
  }
}

if (token) {
  knownName();
  $("join-form").addEventListener("submit", join);
  $("close-button").addEventListener("click", close);
  follow();
} else {
  $("start").hidden = false;
  $("start-button").addEventListener("click", start);
}
