// The Game: dodge the meteors; each one that falls past the paddle scores a point.
//
// Keyboard: Left/Right arrows (or A/D) move, Space or Enter starts, 1-3 choose the level.
// Touch and mouse: tap the board to start, then touch (or drag) where the paddle should go.
//
// Records go to routes.py: GET /top10/{level} and POST /record at each game over. A record
// made while offline is kept in localStorage and sent once the server answers again. The
// top 10 is live: a WebSocket to /live/{level} brings it whenever anyone saves a record;
// while the socket is closed, the list is fetched every few seconds instead.

const LEVELS = {
  1: { name: "Easy", every: 0.9, speed: 170, aimed: 0.25 },
  2: { name: "Normal", every: 0.6, speed: 240, aimed: 0.35 },
  3: { name: "Hard", every: 0.4, speed: 320, aimed: 0.45 },
};
const WIDTH = 360;
const HEIGHT = 480;
const PADDLE = { w: 64, h: 12, y: HEIGHT - 36, speed: 320 };
const RESTART_DELAY_MS = 600; // a tap or key right at game over does not restart at once
const PENDING_KEY = "game.pending";

const board = document.getElementById("board");
const ctx = board.getContext("2d");
const scoreOut = document.getElementById("score");
const message = document.getElementById("message");
const nameInput = document.getElementById("player-name");
const levelButtons = [...document.querySelectorAll("#levels button")];
const topList = document.getElementById("top10");
const topLevel = document.getElementById("top10-level");

const storedLevel = Number(localStorage.getItem("game.level"));
const game = {
  state: "ready",
  level: LEVELS[storedLevel] ? storedLevel : 1,
  x: WIDTH / 2,
  target: null,
  left: false,
  right: false,
  meteors: [],
  score: 0,
  spawnIn: 0,
  overAt: 0,
  last: 0,
};
const stars = Array.from({ length: 40 }, () => ({
  x: Math.random() * WIDTH, y: Math.random() * HEIGHT, r: Math.random() * 1.2 + 0.3,
}));

// -- drawing ------------------------------------------------------------------------------

function setUpCanvas() {
  const dpr = Math.min(window.devicePixelRatio || 1, 3);
  board.width = WIDTH * dpr;
  board.height = HEIGHT * dpr;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}

function draw() {
  ctx.fillStyle = "#111827";
  ctx.fillRect(0, 0, WIDTH, HEIGHT);
  ctx.fillStyle = "rgba(255, 255, 255, 0.5)";
  for (const s of stars) {
    ctx.beginPath();
    ctx.arc(s.x, s.y, s.r, 0, Math.PI * 2);
    ctx.fill();
  }
  for (const m of game.meteors) {
    const tail = ctx.createLinearGradient(m.x, m.y - m.r * 4, m.x, m.y);
    tail.addColorStop(0, "rgba(255, 209, 102, 0)");
    tail.addColorStop(1, "rgba(255, 209, 102, 0.6)");
    ctx.fillStyle = tail;
    ctx.beginPath();
    ctx.moveTo(m.x - m.r * 0.8, m.y);
    ctx.lineTo(m.x, m.y - m.r * 4);
    ctx.lineTo(m.x + m.r * 0.8, m.y);
    ctx.fill();
    ctx.fillStyle = "#ffd166";
    ctx.beginPath();
    ctx.arc(m.x, m.y, m.r, 0, Math.PI * 2);
    ctx.fill();
  }
  ctx.fillStyle = "#ef476f";
  ctx.beginPath();
  ctx.roundRect(game.x - PADDLE.w / 2, PADDLE.y, PADDLE.w, PADDLE.h, 6);
  ctx.fill();

  ctx.fillStyle = "#fff";
  ctx.textAlign = "left";
  ctx.font = "bold 16px system-ui, sans-serif";
  ctx.fillText(`${game.score}`, 12, 24);
  ctx.textAlign = "right";
  ctx.fillText(`Level ${game.level} ${LEVELS[game.level].name}`, WIDTH - 12, 24);
  if (game.state !== "playing") {
    ctx.fillStyle = "rgba(17, 24, 39, 0.75)";
    ctx.fillRect(0, HEIGHT / 2 - 60, WIDTH, 110);
    ctx.fillStyle = "#fff";
    ctx.textAlign = "center";
    ctx.font = "bold 26px system-ui, sans-serif";
    const title = game.state === "over" ? `Game over: ${game.score}` : "Dodge the meteors";
    ctx.fillText(title, WIDTH / 2, HEIGHT / 2 - 18);
    ctx.font = "16px system-ui, sans-serif";
    ctx.fillText("Press Space or tap to play", WIDTH / 2, HEIGHT / 2 + 16);
  }
}

// -- playing ------------------------------------------------------------------------------

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

function setState(state) {
  game.state = state;
  board.dataset.state = state;
  for (const button of levelButtons) button.disabled = state === "playing";
}

function start() {
  if (game.state === "playing") return;
  if (game.state === "over" && performance.now() - game.overAt < RESTART_DELAY_MS) return;
  game.meteors = [];
  game.score = 0;
  game.spawnIn = 0.5;
  game.x = WIDTH / 2;
  game.target = null;
  scoreOut.value = "0";
  message.textContent = "";
  setState("playing");
  board.focus();
}

function update(dt) {
  const level = LEVELS[game.level];
  const direction = (game.right ? 1 : 0) - (game.left ? 1 : 0);
  if (direction) {
    game.target = null;
    game.x += direction * PADDLE.speed * dt;
  } else if (game.target !== null) {
    const gap = game.target - game.x;
    const step = PADDLE.speed * 1.5 * dt;
    game.x += Math.abs(gap) <= step ? gap : Math.sign(gap) * step;
  }
  game.x = clamp(game.x, PADDLE.w / 2, WIDTH - PADDLE.w / 2);
  board.dataset.x = Math.round(game.x);

  game.spawnIn -= dt;
  if (game.spawnIn <= 0) {
    game.spawnIn += level.every * (0.7 + Math.random() * 0.6);
    const r = 9 + Math.random() * 7;
    // Some meteors fall straight at the paddle: standing still is not a strategy.
    const x = Math.random() < level.aimed
      ? game.x + (Math.random() - 0.5) * 30
      : r + Math.random() * (WIDTH - 2 * r);
    game.meteors.push({ x: clamp(x, r, WIDTH - r), y: -r, r,
                        vy: level.speed * (0.85 + Math.random() * 0.3) });
  }

  const left = game.x - PADDLE.w / 2;
  for (const m of game.meteors) {
    m.y += m.vy * dt;
    const nearX = clamp(m.x, left, left + PADDLE.w);
    const nearY = clamp(m.y, PADDLE.y, PADDLE.y + PADDLE.h);
    if ((m.x - nearX) ** 2 + (m.y - nearY) ** 2 < m.r * m.r) {
      gameOver();
      return;
    }
  }
  const before = game.meteors.length;
  game.meteors = game.meteors.filter((m) => m.y - m.r < HEIGHT);
  if (game.meteors.length !== before) {
    game.score += before - game.meteors.length;
    scoreOut.value = String(game.score);
  }
}

function frame(now) {
  const dt = game.last ? Math.min(0.05, (now - game.last) / 1000) : 0;
  game.last = now;
  if (game.state === "playing") update(dt);
  draw();
  requestAnimationFrame(frame);
}

function gameOver() {
  setState("over");
  game.overAt = performance.now();
  game.left = game.right = false;
  message.textContent = `Game over: ${game.score} ${game.score === 1 ? "point" : "points"}.`;
  saveRecord({ name: playerName(), level: game.level, score: game.score });
}

// -- levels and records -------------------------------------------------------------------

function chooseLevel(level) {
  if (!LEVELS[level] || game.state === "playing") return;
  game.level = level;
  localStorage.setItem("game.level", String(level));
  for (const button of levelButtons) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.level) === level));
  }
  topLevel.textContent = `level ${level}`;
  setState("ready");
  game.meteors = [];
  showTop10();
  watchTop10();
}

function playerName() {
  const name = nameInput.value.trim().replace(/\s+/g, " ").slice(0, 20);
  return name || "Anonymous";
}

class Refused extends Error {}

async function postRecord(record) {
  const response = await fetch("/record", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(record),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Refused(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function pending() {
  try {
    return JSON.parse(localStorage.getItem(PENDING_KEY)) || [];
  } catch {
    return [];
  }
}

async function saveRecord(record) {
  const said = message.textContent;
  let note;
  try {
    const saved = await postRecord(record);
    note = saved.rank ? `Number ${saved.rank} of level ${record.level}!` : "Saved.";
  } catch (error) {
    if (error instanceof Refused) {
      note = `Not saved: ${error.message}`;
    } else {
      localStorage.setItem(PENDING_KEY, JSON.stringify([...pending(), record]));
      note = "Offline: the record will be sent later.";
    }
  }
  if (game.state !== "playing") message.textContent = `${said} ${note}`;
  if (record.level === game.level) showTop10();
}

async function sendPending() {
  let waiting = pending();
  if (!waiting.length) return;
  while (waiting.length) {
    try {
      await postRecord(waiting[0]);
    } catch (error) {
      if (!(error instanceof Refused)) return; // still offline: try again later
    }
    waiting = waiting.slice(1);
    localStorage.setItem(PENDING_KEY, JSON.stringify(waiting));
  }
  showTop10();
}

async function showTop10() {
  const level = game.level;
  let records = null;
  try {
    const response = await fetch(`/top10/${level}`);
    if (!response.ok) throw new Error(response.statusText);
    records = await response.json();
  } catch {
    // shown as a note below
  }
  if (level === game.level) renderTop10(records); // the level may have changed meanwhile
}

function renderTop10(records) {
  const items = (records || []).map((r) => `${r.name}: ${r.score}`);
  let note = null; // a message in place of the list: not a numbered entry
  if (!records) note = "The top 10 is not available offline.";
  else if (!items.length) note = "No records yet: be the first.";
  topList.replaceChildren(...(note ? [note] : items).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    if (note) item.className = "note";
    return item;
  }));
}

const live = { socket: null, level: 0, retry: 1000, poll: null };

function watchTop10() {
  if (live.socket && live.level === game.level) return;
  if (live.socket) {
    live.socket.onclose = null;
    live.socket.close();
  }
  const level = game.level;
  const socket = new WebSocket(`wss://${location.host}/live/${level}`);
  live.socket = socket;
  live.level = level;
  socket.onopen = () => {
    live.retry = 1000;
    clearInterval(live.poll);
    live.poll = null;
  };
  socket.onmessage = (event) => {
    if (level === game.level) renderTop10(JSON.parse(event.data));
  };
  socket.onclose = () => {
    if (live.socket !== socket) return;
    live.socket = null; // offline, or the server restarts: poll, and try again later
    if (!live.poll) live.poll = setInterval(showTop10, 5000);
    setTimeout(watchTop10, live.retry);
    live.retry = Math.min(live.retry * 2, 30000);
  };
}

// -- input --------------------------------------------------------------------------------

function boardX(event) {
  const box = board.getBoundingClientRect();
  return ((event.clientX - box.left) * WIDTH) / box.width;
}

board.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  board.focus();
  if (game.state !== "playing") {
    start();
    return;
  }
  game.target = boardX(event);
  board.setPointerCapture(event.pointerId);
});
board.addEventListener("pointermove", (event) => {
  if (game.state === "playing" && (event.pointerType !== "mouse" || event.buttons)) {
    game.target = boardX(event);
  }
});

const KEYS = { ArrowLeft: "left", KeyA: "left", ArrowRight: "right", KeyD: "right" };

addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement) {
    if (event.key === "Enter") board.focus();
    return;
  }
  if (target instanceof HTMLButtonElement && (event.code === "Space" || event.key === "Enter")) {
    return; // the focused level button handles it
  }
  if (KEYS[event.code]) {
    game[KEYS[event.code]] = true;
  } else if (event.code === "Space" || event.key === "Enter") {
    start();
  } else if (/^Digit[1-3]$/.test(event.code)) {
    chooseLevel(Number(event.code.slice(-1)));
  } else {
    return;
  }
  event.preventDefault();
});
addEventListener("keyup", (event) => {
  if (KEYS[event.code]) game[KEYS[event.code]] = false;
});
addEventListener("blur", () => {
  game.left = game.right = false;
});

for (const button of levelButtons) {
  button.addEventListener("click", () => {
    chooseLevel(Number(button.dataset.level));
    board.focus();
  });
}

nameInput.value = localStorage.getItem("game.name") || "";
nameInput.addEventListener("change", () => localStorage.setItem("game.name", nameInput.value));

addEventListener("online", sendPending);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch((error) => {
    // Service workers need a trusted certificate: run 'hyper2web certs --install'.
    console.warn("The Game will not work offline:", error.message);
  });
}

setUpCanvas();
chooseLevel(game.level);
sendPending();
requestAnimationFrame(frame);
