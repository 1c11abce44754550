// SingSong's web page: record or upload a clip, type lyrics or ask for a melody, then follow
// the job until the song is ready. Talks only to this site's JSON API (/api/openapi.json).
"use strict";

const $ = (id) => document.getElementById(id);
const WORKING = {
  sing: "Writing a melody for your voice and putting you on it...",
  lyrics: "Warming up my voice for your words...",
  melody: "Composing a new melody...",
  piano: "Listening for the notes...",
};
const KIND_NAMES = { sing: "song", lyrics: "sung lyrics", melody: "melody", piano: "piano" };
const FORM_NAMES = { full: "a full song (verse and chorus)", short: "a short version" };
const SONG_KINDS = ["sing", "lyrics"];
const MAX_RECORDING_S = 60;
const JOB_DEADLINE_MS = 10 * 60 * 1000;

let maxClipBytes = 20 * 1024 * 1024;
let shown = null; // the track in the result card
let busy = false;

// --- Talking to the API ----------------------------------------------------------------

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

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- Jobs --------------------------------------------------------------------------------

async function startJob(path, body) {
  if (busy) return;
  setBusy(true);
  hideError();
  showProgress("Sending...");
  try {
    const headers = { "Idempotency-Key": newKey() };
    if (body && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    const job = await api(path, { method: "POST", body, headers });
    const track = await follow(job);
    showResult(track);
    await loadHistory();
  } catch (error) {
    showError(error.message);
  } finally {
    $("progress").hidden = true;
    setBusy(false);
  }
}

async function follow(job) {
  const deadline = Date.now() + JOB_DEADLINE_MS;
  while (job.status === "queued" || job.status === "running") {
    showProgress(progressText(job));
    if (Date.now() > deadline) {
      throw new Error("This is taking much longer than usual. Your song will show up " +
        "under Your songs when it is ready.");
    }
    await pause(job.status === "queued" ? 1000 : 400);
    job = await api(job.url);
  }
  if (job.status === "failed" || !job.track) {
    throw new Error(job.error || "Sorry, that did not work. Please try again.");
  }
  return job.track;
}

function progressText(job) {
  if (job.status === "running") return WORKING[job.kind] || "Working on it...";
  if (job.ahead > 0) {
    return `In the queue: ${job.ahead} ${job.ahead === 1 ? "song" : "songs"} ahead of yours.`;
  }
  return "Next in line...";
}

// --- What the page shows ---------------------------------------------------------------

function setBusy(value) {
  busy = value;
  document.querySelectorAll("main button").forEach((button) => {
    if (button.id !== "record") button.disabled = value;
  });
}

function showProgress(text) {
  $("progress").hidden = false;
  $("progress-text").textContent = text;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
}

function hideError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function describe(track) {
  const parts = [KIND_NAMES[track.kind] || track.kind];
  if (track.key) parts.push(track.key);
  if (track.tempo_bpm) parts.push(`${Math.round(track.tempo_bpm)} BPM`);
  parts.push(`${Math.round(track.duration_s)} s`);
  return `#${track.id}: ${parts.join(", ")}`;
}

function showResult(track) {
  shown = track;
  $("result").hidden = false;
  $("result-about").textContent = describe(track) + (track.shared ? " (shared)" : "");
  $("result-sung").textContent = track.about || "";
  $("result-sung").hidden = !track.about;
  $("result-note").textContent = "";
  const audio = $("result-audio");
  audio.src = track.urls.audio;
  setLink($("download-audio"), track.urls.audio);
  setLink($("download-midi"), track.urls.midi);
  const picture = $("result-picture");
  picture.hidden = !track.urls.picture;
  if (track.urls.picture) picture.src = track.urls.picture;
  $("piano").hidden = track.kind !== "sing";
  $("another").hidden = track.kind === "piano";
  const song = SONG_KINDS.includes(track.kind);
  $("short").hidden = !song || track.form !== "full"; // a song offers its other form
  $("full").hidden = !song || track.form !== "short";
  $("share").hidden = track.shared;
  audio.play().catch(() => {}); // the browser may want a click first: the controls are there
  $("result").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

function setLink(link, url) {
  link.hidden = !url;
  if (url) link.href = `${url}?download=1`;
}

async function loadHistory() {
  let tracks = [];
  try {
    tracks = (await api("/api/history")).tracks;
  } catch (error) {
    showError(error.message);
    return;
  }
  const list = $("history");
  list.replaceChildren(...tracks.map(historyItem));
  $("history-empty").hidden = tracks.length > 0;
}

function historyItem(track) {
  const item = document.createElement("li");
  const title = document.createElement("span");
  title.className = "title";
  const when = new Date(track.created_at).toLocaleString();
  title.textContent = `${describe(track)}, ${when}${track.shared ? ", shared" : ""}`;
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "none";
  audio.src = track.urls.audio;
  audio.setAttribute("aria-label", `Play song #${track.id}`);
  const open = document.createElement("button");
  open.type = "button";
  open.className = "secondary";
  open.textContent = "Open";
  open.setAttribute("aria-label", `Open song #${track.id}`);
  open.addEventListener("click", () => showResult(track));
  item.append(title, audio, open);
  return item;
}

async function loadAlbum() {
  let album;
  try {
    album = await api("/api/album");
  } catch (_) {
    return; // no album yet
  }
  $("album").hidden = false;
  const count = `${album.tracks.length} ${album.tracks.length === 1 ? "song" : "songs"}`;
  const names = [...new Set(album.tracks.map((track) => track.credit))];
  $("album-text").textContent = `Week ${album.week}: ${count} people shared` +
    (names.length ? `, with the voices of ${names.join(", ")}.` : ".");
  const shown = [];
  if (album.files.cover) {
    const image = document.createElement("img");
    image.src = album.files.cover;
    image.alt = `The cover of the album of week ${album.week}`;
    shown.push(image);
  }
  const audioUrl = album.files.audio || album.files.mp3;
  if (audioUrl) {
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "none";
    audio.src = audioUrl;
    audio.setAttribute("aria-label", "Play this week's album");
    shown.push(audio);
  }
  const link = document.createElement("a");
  link.id = "album-link";
  link.href = album.page;
  link.textContent = "Open the album: tracklist, credits and downloads";
  shown.push(link);
  $("album-files").replaceChildren(...shown);
}

async function loadOptions() {
  try {
    const options = await api("/api/options");
    maxClipBytes = options.max_clip_bytes;
    fillSelect($("melody-key"), options.keys);
    fillSelect($("melody-style"), options.styles);
    for (const id of ["voice-song-form", "lyrics-song-form"]) {
      fillSelect($(id), options.forms, FORM_NAMES);
    }
  } catch (error) {
    showError(error.message);
  }
}

function fillSelect(select, values, names = {}) {
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = names[value] || value;
    select.append(option);
  }
}

// --- Sending a clip ----------------------------------------------------------------------

function sendClip(kind, blob, filename) {
  if (blob.size > maxClipBytes) {
    const mb = (n) => (n / 1e6).toFixed(1);
    showError(`That file is ${mb(blob.size)} MB and I can take at most ${mb(maxClipBytes)} MB. ` +
      "Send a shorter clip (a minute at most is plenty).");
    return;
  }
  const form = new FormData();
  form.append("kind", kind);
  form.append("audio", blob, filename);
  if (kind === "sing") form.append("form", $("voice-song-form").value);
  startJob("/api/jobs", form);
}

function sendChosenFile(kind) {
  const file = $("audio-file").files[0];
  if (!file) {
    showError("Choose an audio file first.");
    return;
  }
  sendClip(kind, file, file.name);
}

// --- Recording ---------------------------------------------------------------------------

let recorder = null;
let recordingTimer = null;

async function toggleRecording() {
  if (recorder && recorder.state === "recording") {
    recorder.stop();
    return;
  }
  if (busy) return;
  hideError();
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    showError("This browser cannot record here: upload a clip instead.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showError(microphoneProblem(error));
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size) chunks.push(event.data);
  });
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((track) => track.stop());
    clearInterval(recordingTimer);
    showRecording(false);
    const type = recorder.mimeType || "audio/webm";
    const blob = new Blob(chunks, { type });
    if (!blob.size) {
      showError("The recording came out empty. Please try again, or upload a clip.");
      return;
    }
    sendClip("sing", blob, `recording.${extensionFor(type)}`);
  });
  recorder.start(250);
  const started = Date.now();
  showRecording(true);
  recordingTimer = setInterval(() => {
    const seconds = Math.floor((Date.now() - started) / 1000);
    $("record-time").textContent = `Recording: ${seconds} s`;
    if (seconds >= MAX_RECORDING_S) recorder.stop();
  }, 250);
}

function showRecording(on) {
  $("record").setAttribute("aria-pressed", String(on));
  $("record").classList.toggle("recording", on);
  $("record-label").textContent = on ? "Stop and make a song" : "Record";
  $("record-time").textContent = on ? "Recording: 0 s" : "";
}

function microphoneProblem(error) {
  if (error.name === "NotAllowedError" || error.name === "SecurityError") {
    return "Microphone access was denied. Allow it in your browser's site settings, " +
      "or upload a clip instead.";
  }
  if (error.name === "NotFoundError") return "No microphone was found: upload a clip instead.";
  return `The microphone did not start (${error.message}). Upload a clip instead.`;
}

function extensionFor(type) {
  if (type.includes("ogg")) return "ogg";
  if (type.includes("mp4")) return "m4a";
  return "webm";
}

// --- Buttons -----------------------------------------------------------------------------

async function share() {
  if (!shown) return;
  try {
    const answer = await api(`/api/tracks/${shown.id}/share`, { method: "POST" });
    $("result-note").textContent = answer.message;
    $("share").hidden = true;
    await loadHistory();
  } catch (error) {
    showError(error.message);
  }
}

// The name the album credits this browser's person by (kept with their songs).
async function loadName() {
  try {
    $("name-text").value = (await api("/api/name")).name;
  } catch (_) {
    // Without it the field stays empty; saving still works.
  }
}

async function saveName(event) {
  event.preventDefault();
  try {
    const answer = await api("/api/name", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: $("name-text").value }),
    });
    $("name-text").value = answer.name;
    $("name-note").textContent = answer.message;
  } catch (error) {
    showError(error.message);
  }
}

async function forget() {
  const sure = window.confirm("Delete every song, clip and setting SingSong keeps for this " +
    "browser? This cannot be undone.");
  if (!sure) return;
  try {
    const answer = await api("/api/forget", { method: "POST" });
    $("forget-note").textContent = answer.message;
    $("name-text").value = "";
    $("result").hidden = true;
    $("result-audio").pause();
    $("result-audio").removeAttribute("src");
    shown = null;
    await loadHistory();
  } catch (error) {
    showError(error.message);
  }
}

function wire() {
  $("record").addEventListener("click", toggleRecording);
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendChosenFile("sing");
  });
  $("upload-piano").addEventListener("click", () => sendChosenFile("piano"));
  $("lyrics-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("lyrics-text").value.trim();
    if (!text) {
      showError("Type a few words for me to sing.");
      return;
    }
    // Sung in the language the words are written in; the browser's when they do not tell.
    startJob("/api/jobs", { kind: "lyrics", text, form: $("lyrics-song-form").value,
      language: navigator.language || "" });
  });
  $("melody-form").addEventListener("submit", (event) => {
    event.preventDefault();
    startJob("/api/jobs", { kind: "melody", key: $("melody-key").value,
      style: $("melody-style").value });
  });
  $("another").addEventListener("click", () => {
    if (shown) startJob(`/api/tracks/${shown.id}/another`);
  });
  for (const action of ["piano", "short", "full"]) {
    $(action).addEventListener("click", () => {
      if (shown) startJob(`/api/tracks/${shown.id}/${action}`);
    });
  }
  $("share").addEventListener("click", share);
  $("forget").addEventListener("click", forget);
  $("name-form").addEventListener("submit", saveName);
}

wire();
loadOptions();
loadHistory();
loadAlbum();
loadName();
