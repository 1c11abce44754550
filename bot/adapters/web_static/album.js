// SingSong's album page: the weekly community album (the newest, or ?week=YYYY-Www) with
// its cover, a player, the tracklist (click a song to jump to it; the one playing is marked),
// credits and downloads. Talks only to this site's JSON API (GET /api/album).
"use strict";

const WEEK = /^(\d{4})-W(\d{2})$/;

let tracks = []; // the album's tracks, in order: {position, title, credit, start_s, ...}
let items = []; // their <li> elements, in the same order
let playing = -1; // the index of the highlighted track

// --- Loading -----------------------------------------------------------------------------

async function loadAlbum() {
  const week = new URLSearchParams(window.location.search).get("week");
  const path = week ? `/api/album?week=${encodeURIComponent(week)}` : "/api/album";
  let response;
  let body = null;
  try {
    response = await fetch(path, { credentials: "same-origin" });
    body = await response.json();
  } catch (_) {
    showError("The album could not be loaded. Check your connection and reload the page.");
    return;
  } finally {
    $("album-loading").hidden = true;
  }
  if (response.status === 404) {
    showEmpty(week);
  } else if (!response.ok) {
    showError(body && body.error ? body.error : `The server answered ${response.status}.`);
  } else {
    showAlbum(body);
  }
}

// --- What the page shows -----------------------------------------------------------------

function showEmpty(week) {
  $("album-empty").hidden = false;
  if (week) {
    $("album-empty-title").textContent = `No album for week ${week}`;
    $("album-empty-text").textContent = "There is no community album for that week. " +
      "Every week SingSong makes one from the songs people share.";
  }
}

function showAlbum(album) {
  tracks = album.tracks;
  document.title = `SingSong community album ${album.week}`;
  $("album-heading").textContent = `The community album of week ${album.week}`;
  $("album-subtitle").textContent = weekDates(album.week);
  const count = `${tracks.length} ${tracks.length === 1 ? "song" : "songs"}`;
  $("album-summary").textContent = `${count}, ${clock(album.duration_s)}`;
  $("album-credits").textContent = credits(tracks);

  const cover = $("album-cover");
  if (album.files.cover) {
    cover.src = album.files.cover;
    cover.alt = `The cover of the community album of week ${album.week}`;
    cover.hidden = false;
  }
  // The OGG/Opus first; the MP3 for browsers that cannot play it.
  setSource($("album-ogg"), album.files.audio);
  setSource($("album-mp3"), album.files.mp3);
  $("album-audio").load();
  setDownload($("download-ogg"), album.files.audio);
  setDownload($("download-mp3"), album.files.mp3);

  items = tracks.map(trackItem);
  $("tracklist").replaceChildren(...items);
  $("album").hidden = false;
  highlight(tracks.length ? 0 : -1);
}

function setSource(source, url) {
  if (url) source.src = url;
  else source.remove();
}

function setDownload(link, url) {
  link.hidden = !url;
  if (url) link.href = `${url}?download=1`;
}

function trackItem(track, index) {
  const item = document.createElement("li");
  item.value = track.position;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "track";
  const position = span("track-position", `${track.position}.`);
  const time = span("track-time", clock(track.start_s));
  const words = span("track-words", "");
  words.append(span("track-title", track.title),
    span("track-credit", `Voice: ${track.credit}${track.key ? `, in ${track.key}` : ""}`));
  button.append(position, time, words);
  button.setAttribute("aria-label",
    `${track.position}. ${track.title}, from ${clock(track.start_s)}`);
  button.addEventListener("click", () => playFrom(index));
  item.append(button);
  return item;
}

function credits(list) {
  const names = [...new Set(list.map((track) => track.credit))];
  if (!names.length) return "";
  return `${names.length === 1 ? "Voice" : "Voices"} by ${names.join(", ")}`;
}

// --- Playing -----------------------------------------------------------------------------

function playFrom(index) {
  const audio = $("album-audio");
  audio.currentTime = tracks[index].start_s;
  highlight(index);
  audio.play().catch(() => {}); // the controls are there if the browser wants a click
}

function trackAt(seconds) {
  let found = tracks.length ? 0 : -1;
  tracks.forEach((track, index) => {
    if (track.start_s <= seconds + 0.05) found = index;
  });
  return found;
}

function highlight(index) {
  if (index === playing) return;
  items.forEach((item, i) => {
    const on = i === index;
    item.classList.toggle("playing", on);
    const button = item.firstElementChild;
    if (on) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  });
  playing = index;
}

// --- Words for times and weeks -----------------------------------------------------------

function clock(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function weekDates(week) {
  const match = WEEK.exec(week);
  if (!match) return "";
  // ISO weeks start on Monday; week 1 is the one that holds 4 January.
  const january4 = new Date(Date.UTC(Number(match[1]), 0, 4));
  const monday = new Date(january4);
  monday.setUTCDate(4 - ((january4.getUTCDay() + 6) % 7) + (Number(match[2]) - 1) * 7);
  const sunday = new Date(monday);
  sunday.setUTCDate(monday.getUTCDate() + 6);
  const day = (date, options) => date.toLocaleDateString("en-GB", { timeZone: "UTC",
    day: "numeric", month: "long", ...options });
  return `Songs shared from ${day(monday)} to ${day(sunday, { year: "numeric" })}`;
}

function wire() {
  const audio = $("album-audio");
  const follow = () => highlight(trackAt(audio.currentTime));
  audio.addEventListener("timeupdate", follow);
  audio.addEventListener("seeked", follow);
}

wire();
loadAlbum();
