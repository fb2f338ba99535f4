// The page's script: registers the service worker (sw.js) and talks to routes.py.
const statusLine = document.getElementById("status");
const scores = document.getElementById("scores");

function showStatus() {
  if (!navigator.onLine) {
    statusLine.textContent = "You are offline: this page comes from the service worker's cache.";
  } else if (navigator.serviceWorker?.controller) {
    statusLine.textContent = "Ready to work offline.";
  } else {
    statusLine.textContent = "Online.";
  }
}

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch((error) => {
    // Service workers need a certificate the browser trusts: run 'hyper2web certs --install'.
    statusLine.textContent = `No offline support: ${error.message}`;
  });
  navigator.serviceWorker.addEventListener("controllerchange", showStatus);
}
addEventListener("online", showStatus);
addEventListener("offline", showStatus);
showStatus();

// Chromium offers installation through this event; keep it for the button.
let installPrompt = null;
const installButton = document.getElementById("install");
addEventListener("beforeinstallprompt", (event) => {
  event.preventDefault();
  installPrompt = event;
  installButton.hidden = false;
});
installButton.addEventListener("click", async () => {
  if (!installPrompt) return;
  installPrompt.prompt();
  await installPrompt.userChoice;
  installPrompt = null;
  installButton.hidden = true;
});
addEventListener("appinstalled", () => {
  installButton.hidden = true;
});

async function showTop() {
  try {
    const response = await fetch("/api/top/3");
    const top = await response.json();
    scores.textContent = top.length
      ? top.map((r) => `${r.name} (${r.score})`).join(", ")
      : "none yet";
  } catch {
    scores.textContent = "not available offline";
  }
}

document.getElementById("record").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await fetch("/api/scores", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: form.get("name"), score: Number(form.get("score")) }),
    });
    event.target.reset();
  } catch {
    scores.textContent = "cannot save while offline";
    return;
  }
  showTop();
});

showTop();

// Messages: the list comes from GET /api/messages, then live from a WebSocket that
// routes.py sends it through after each new message. While the socket is closed, the
// page polls instead, and reconnects after 1, 2, 4... (at most 30) seconds.
const messageList = document.getElementById("messages");
const liveLine = document.getElementById("live");
const POLL_EVERY = 5000;
let polling = null;
let retryDelay = 1000;

function showMessages(messages) {
  messageList.replaceChildren(...messages.map((message) => {
    const item = document.createElement("li");
    item.textContent = message.text;  // textContent, never innerHTML: the text is anyone's
    item.title = message.created;
    return item;
  }));
}

async function loadMessages() {
  try {
    const response = await fetch("/api/messages");
    showMessages(await response.json());
  } catch {
    // Offline (the status line says so): the list stays as it was.
  }
}

function connect() {
  const url = new URL("/api/messages/live", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  socket.addEventListener("open", () => {
    liveLine.textContent = "(live)";
    retryDelay = 1000;
    clearInterval(polling);
    polling = null;
  });
  socket.addEventListener("message", (event) => showMessages(JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    liveLine.textContent = "(updated every few seconds)";
    polling ??= setInterval(loadMessages, POLL_EVERY);
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  });
}

document.getElementById("message").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const response = await fetch("/api/messages", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: form.elements.text.value }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error);
    form.reset();
    showMessages(answer);  // the socket brings the same list; this covers a closed one
  } catch (error) {
    liveLine.textContent = `(not sent: ${error.message})`;
  }
});

loadMessages();
connect();
