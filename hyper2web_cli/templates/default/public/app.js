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
