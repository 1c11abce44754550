// SingSong's web page: record (with a level meter, a timer and listening back) or upload a
// clip, type lyrics or ask for a melody, then follow the job until the song is ready; play the
// songs kept for this browser, share one by link or on the album. Talks only to this site's
// JSON API (/api/openapi.json).
"use strict";

const WORKING = {
  sing: "Writing a melody for your voice and putting you on it...",
  lyrics: "Warming up my voice for your words...",
  melody: "Composing a new melody...",
  piano: "Listening for the notes...",
};
const KIND_NAMES = { sing: "Song", lyrics: "Sung lyrics", melody: "Melody", piano: "Piano" };
const FORM_NAMES = { full: "a full song (verse and chorus)", short: "a short version" };
const SONG_KINDS = ["sing", "lyrics"];
const MAX_RECORDING_S = 60;
const SILENT_LEVEL = 0.02; // a microphone this quiet for SILENT_HINT_S is worth a word
const SILENT_HINT_S = 3;
const JOB_DEADLINE_MS = 10 * 60 * 1000;

let maxClipBytes = 20 * 1024 * 1024;
let nextAlbum = null; // {week, comes_out_at}: the album songs shared now go into
let shown = null; // the track in the result card
let busy = false;

// --- Talking to the API ----------------------------------------------------------------

function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
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
  showError("");
  showProgress("Sending...");
  try {
    const headers = { "Idempotency-Key": newKey() };
    if (body && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    const job = await api(path, { method: "POST", body, headers });
    const track = await follow(job);
    showResult(track, { play: true });
    await loadHistory();
  } catch (error) {
    failed(error.message);
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

// A job that did not make a song leaves nothing behind that looks like its answer: the
// previous song is put away and the file that failed is no longer chosen.
function failed(text) {
  showError(text);
  hideResult();
  $("audio-file").value = "";
}

// --- What the page shows ---------------------------------------------------------------

// Recording goes on while a song is made; sending waits for it.
const ALWAYS_ON = ["record", "record-stop", "record-cancel", "record-again", "record-discard"];

function setBusy(value) {
  busy = value;
  document.querySelectorAll("main button").forEach((button) => {
    if (!ALWAYS_ON.includes(button.id)) button.disabled = value;
  });
}

function showProgress(text) {
  $("progress").hidden = false;
  $("progress-text").textContent = text;
}

function clock(seconds) {
  const whole = Math.max(0, Math.round(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function when(isoTime) {
  const date = new Date(isoTime);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === today.toDateString()) return `today ${time}`;
  return `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
}

function meta(track) {
  const parts = [KIND_NAMES[track.kind] || track.kind];
  if (track.key) parts.push(track.key);
  if (track.tempo_bpm) parts.push(`${Math.round(track.tempo_bpm)} BPM`);
  parts.push(clock(track.duration_s));
  if (track.style) parts.push(`${track.style} band`);
  return parts.join(" · ");
}

function showResult(track, { play = false } = {}) {
  shown = track;
  $("result").hidden = false;
  $("result-title").textContent = track.title;
  $("result-meta").textContent = meta(track) + (track.shared ? " · on the album list" : "");
  setText($("result-origin"), track.origin);
  setText($("result-sung"), track.about);
  setText($("result-lyrics"), track.lyrics ? `“${track.lyrics}”` : "");
  $("result-note").textContent = "";
  const audio = $("result-audio");
  audio.src = track.urls.audio;
  audio.setAttribute("aria-label", `Play ${track.title}`);
  setLink($("download-audio"), track.urls.audio);
  setLink($("download-midi"), track.urls.midi);
  setLink($("download-picture"), track.urls.picture);
  const picture = $("result-picture");
  picture.hidden = !track.urls.picture;
  if (track.urls.picture) {
    picture.src = track.urls.picture;
    picture.alt = `${track.title}: the melody, and the voice singing it`;
  }
  $("piano").hidden = track.kind !== "sing";
  $("another").hidden = track.kind === "piano";
  const song = SONG_KINDS.includes(track.kind);
  $("short").hidden = !song || track.form !== "full"; // a song offers its other form
  $("full").hidden = !song || track.form !== "short";
  $("share").hidden = track.shared || track.kind === "piano"; // the album is of songs
  showLink(track);
  markPlaying(track.id);
  if (play) audio.play().catch(() => {}); // the browser may want a click: the controls are there
  $("result").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

function hideResult() {
  shown = null;
  $("result").hidden = true;
  $("result-audio").pause();
  $("result-audio").removeAttribute("src");
  markPlaying(null);
}

function setText(element, text) {
  element.textContent = text || "";
  element.hidden = !text;
}

function setLink(link, url) {
  link.hidden = !url;
  if (url) link.href = `${url}?download=1`;
}

// --- Your songs: one list, one player (the result card's) --------------------------------

async function loadHistory() {
  let tracks = [];
  try {
    tracks = (await api("/api/history")).tracks;
  } catch (error) {
    showError(error.message);
    return;
  }
  $("history").replaceChildren(...tracks.map(historyItem));
  $("history-empty").hidden = tracks.length > 0;
  if (shown) markPlaying(shown.id);
}

function historyItem(track) {
  const item = document.createElement("li");
  item.dataset.track = String(track.id);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "song";
  button.setAttribute("aria-label", `Play ${track.title}`);
  const icon = span("song-play", "▶");
  icon.setAttribute("aria-hidden", "true");
  const words = span("song-words", "");
  words.append(span("song-title", track.title),
    span("song-meta", `${meta(track)} · ${when(track.created_at)}` +
      (track.link ? " · shared by link" : "")));
  button.append(icon, words);
  button.addEventListener("click", () => showResult(track, { play: true }));
  item.append(button);
  return item;
}

function markPlaying(trackId) {
  document.querySelectorAll("#history li").forEach((item) => {
    const on = item.dataset.track === String(trackId);
    item.classList.toggle("playing", on);
    const button = item.firstElementChild;
    if (on) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  });
}

// --- Sharing: a link for friends, and the community album ---------------------------------

function showLink(track) {
  const link = track.link;
  $("link-make").hidden = Boolean(link);
  $("link-shown").hidden = !link;
  if (!link) return;
  const url = new URL(link.url, window.location.href).href;
  $("link-url").value = url;
  $("link-open").href = url;
  $("link-credit").textContent = `Anyone with this link can play it, credited to ${link.credit}.`;
}

async function makeLink() {
  if (!shown) return;
  try {
    const credit = $("link-named").checked ? "name" : "anonymous";
    const track = await postJson(`/api/tracks/${shown.id}/link`, { credit });
    shown = track;
    showLink(track);
    $("link-url").select();
    $("result-note").textContent = "Here is your link: send it to a friend.";
    await loadHistory();
  } catch (error) {
    showError(error.message);
  }
}

async function revokeLink() {
  if (!shown) return;
  try {
    const answer = await api(`/api/tracks/${shown.id}/link`, { method: "DELETE" });
    shown = { ...shown, link: null };
    showLink(shown);
    $("result-note").textContent = answer.message;
    await loadHistory();
  } catch (error) {
    showError(error.message);
  }
}

async function copyLink() {
  try {
    await navigator.clipboard.writeText($("link-url").value);
    $("result-note").textContent = "Copied.";
  } catch (_) {
    $("link-url").select(); // the browser would not let the page copy: selected for the person
  }
}

async function share() {
  if (!shown) return;
  try {
    const answer = await api(`/api/tracks/${shown.id}/share`, { method: "POST" });
    const note = $("result-note");
    note.textContent = `${answer.message} ${comesOut("It comes out")} `;
    const link = document.createElement("a");
    link.href = "/album";
    link.textContent = "See the album page";
    note.append(link);
    $("share").hidden = true;
    await loadHistory();
  } catch (error) {
    showError(error.message);
  }
}

function comesOut(prefix) {
  if (!nextAlbum) return "";
  const date = new Date(nextAlbum.comes_out_at);
  const day = date.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long" });
  return `${prefix} on ${day}.`;
}

async function loadAlbum() {
  let album = null;
  try {
    album = await api("/api/album");
  } catch (_) {
    album = null; // none yet
  }
  if (album) {
    const count = `${album.tracks.length} ${album.tracks.length === 1 ? "song" : "songs"}`;
    const names = [...new Set(album.tracks.map((track) => track.credit))];
    $("album-text").textContent = `The album of week ${album.week}: ${count} people shared` +
      (names.length ? `, with the voices of ${names.join(", ")}.` : ".");
    $("album-link").href = album.page;
    $("album-link").textContent = "Listen to the album";
    if (album.files.cover) {
      $("album-cover").src = album.files.cover;
      $("album-cover").alt = `The cover of the album of week ${album.week}`;
      $("album-cover").hidden = false;
    }
    $("album-next").textContent = comesOut("The next one comes out");
  } else {
    $("album-text").textContent = "Every week, the songs people share become one album. " +
      "Put one of yours on it with the button under a song.";
    $("album-next").textContent = comesOut("The first one comes out");
    $("album-link").textContent = "About the album";
  }
}

async function loadOptions() {
  try {
    const options = await api("/api/options");
    maxClipBytes = options.max_clip_bytes;
    nextAlbum = options.next_album;
    fillSelect($("melody-key"), options.keys);
    for (const id of ["melody-style", "voice-style", "lyrics-style"]) {
      fillSelect($(id), options.styles);
    }
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
    failed(`That file is ${mb(blob.size)} MB and I can take at most ${mb(maxClipBytes)} MB. ` +
      "Send a shorter clip (a minute at most is plenty).");
    return;
  }
  const form = new FormData();
  form.append("kind", kind);
  form.append("audio", blob, filename);
  if (kind === "sing") {
    form.append("form", $("voice-song-form").value);
    form.append("style", $("voice-style").value);
  }
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

// --- Recording: live level and time, then listen back, record again or send -------------

const take = { recorder: null, stream: null, audio: null, timer: null, blob: null,
  cancelled: false, started: 0, quietSince: 0 };

function showRecorder(state) {
  $("record-idle").hidden = state !== "idle";
  $("record-live").hidden = state !== "live";
  $("record-review").hidden = state !== "review";
}

async function startRecording() {
  if (busy) return;
  showError("");
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    showError("This browser cannot record here: upload a clip instead.");
    return;
  }
  try {
    take.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showError(microphoneProblem(error));
    return;
  }
  const chunks = [];
  take.cancelled = false;
  take.recorder = new MediaRecorder(take.stream);
  take.recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size) chunks.push(event.data);
  });
  take.recorder.addEventListener("stop", () => finishRecording(chunks));
  take.recorder.start(250);
  take.started = Date.now();
  take.quietSince = take.started;
  watchLevel(take.stream);
  $("record-hint").textContent = "";
  showRecorder("live");
  tick();
  take.timer = setInterval(tick, 100);
}

function tick() {
  const seconds = (Date.now() - take.started) / 1000;
  $("record-time").textContent = `${clock(Math.floor(seconds))} / ${clock(MAX_RECORDING_S)}`;
  if (seconds >= MAX_RECORDING_S) stopRecording();
}

// The level meter: the microphone's loudness, ten times a second (Web Audio's analyser).
function watchLevel(stream) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  take.audio = context;
  const measure = () => {
    if (take.audio !== context) return;
    analyser.getFloatTimeDomainData(samples);
    const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
    const level = Math.min(1, rms * 4);
    $("record-level").value = level;
    heardOrNot(level);
    setTimeout(measure, 100);
  };
  measure();
}

function heardOrNot(level) {
  const now = Date.now();
  if (level > SILENT_LEVEL) take.quietSince = now;
  $("record-hint").textContent = now - take.quietSince > SILENT_HINT_S * 1000
    ? "I hear nothing: is the right microphone on, and not muted?" : "";
}

function stopRecording() {
  if (take.recorder && take.recorder.state === "recording") take.recorder.stop();
}

function cancelRecording() {
  take.cancelled = true;
  stopRecording();
}

function finishRecording(chunks) {
  take.stream.getTracks().forEach((track) => track.stop());
  clearInterval(take.timer);
  if (take.audio) take.audio.close();
  take.audio = null;
  if (take.cancelled) {
    discardTake();
    return;
  }
  const type = take.recorder.mimeType || "audio/webm";
  take.blob = new Blob(chunks, { type });
  if (!take.blob.size) {
    discardTake();
    showError("The recording came out empty. Please try again, or upload a clip.");
    return;
  }
  const seconds = (Date.now() - take.started) / 1000;
  $("record-take-about").textContent = `Your recording (${clock(seconds)}): listen back ` +
    "before you send it.";
  $("record-take").src = URL.createObjectURL(take.blob);
  showRecorder("review");
}

function discardTake() {
  const player = $("record-take");
  player.pause();
  if (player.src) URL.revokeObjectURL(player.src);
  player.removeAttribute("src");
  take.blob = null;
  showRecorder("idle");
}

function sendTake(kind) {
  if (!take.blob) return;
  const type = take.blob.type;
  const blob = take.blob;
  discardTake();
  sendClip(kind, blob, `recording.${extensionFor(type)}`);
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

// --- Your name, and forgetting ------------------------------------------------------------

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
    const answer = await postJson("/api/name", { name: $("name-text").value });
    $("name-text").value = answer.name;
    $("name-note").textContent = answer.message;
  } catch (error) {
    showError(error.message);
  }
}

async function forget() {
  const sure = window.confirm("Delete every song, clip, link and setting SingSong keeps for " +
    "this browser? This cannot be undone.");
  if (!sure) return;
  try {
    const answer = await api("/api/forget", { method: "POST" });
    $("forget-note").textContent = answer.message;
    $("name-text").value = "";
    hideResult();
    await loadHistory();
  } catch (error) {
    showError(error.message);
  }
}

function wire() {
  $("record-limit").textContent = clock(MAX_RECORDING_S);
  $("record").addEventListener("click", startRecording);
  $("record-stop").addEventListener("click", stopRecording);
  $("record-cancel").addEventListener("click", cancelRecording);
  $("record-send").addEventListener("click", () => sendTake("sing"));
  $("record-piano").addEventListener("click", () => sendTake("piano"));
  $("record-again").addEventListener("click", () => {
    discardTake();
    startRecording();
  });
  $("record-discard").addEventListener("click", discardTake);
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
      style: $("lyrics-style").value, language: navigator.language || "" });
  });
  $("melody-form").addEventListener("submit", (event) => {
    event.preventDefault();
    startJob("/api/jobs", { kind: "melody", key: $("melody-key").value,
      style: $("melody-style").value });
  });
  for (const action of ["another", "piano", "short", "full"]) {
    $(action).addEventListener("click", () => {
      if (shown) startJob(`/api/tracks/${shown.id}/${action}`);
    });
  }
  $("share").addEventListener("click", share);
  $("link").addEventListener("click", makeLink);
  $("link-copy").addEventListener("click", copyLink);
  $("link-revoke").addEventListener("click", revokeLink);
  $("forget").addEventListener("click", forget);
  $("name-form").addEventListener("submit", saveName);
}

wire();
loadOptions().then(loadAlbum);
loadHistory();
loadName();
