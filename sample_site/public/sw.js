// The Game's service worker: the game loads and plays without a network.
//
// - Install saves the game (SHELL) in a cache named after VERSION.
// - Pages come from the network first, the saved copy when offline; a page never saved
//   gets offline.html.
// - Scripts, styles and icons come from the cache first.
// - The API (/top10/, /record, the /live/ WebSocket) and the server's /__hyper2web__/ are never cached: records
//   are live data, and game.js keeps records made offline until the server is back.
//
// Change VERSION when you publish a new version: every other cache is deleted once the new
// worker activates.
const VERSION = "v1";
const CACHE = "the-game-" + VERSION;
const OFFLINE_PAGE = "/offline.html";
const SHELL = [
  "/",
  "/index.html",
  "/game.js",
  "/style.css",
  "/manifest.webmanifest",
  OFFLINE_PAGE,
  "/icon-192.png",
  "/icon-512.png",
  "/icon-maskable-512.png",
];
const NEVER_CACHED = ["/top10/", "/record", "/live/", "/__hyper2web__/"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (NEVER_CACHED.some((prefix) => url.pathname.startsWith(prefix))) return;
  const wantsPage = request.mode === "navigate" ||
    (request.headers.get("accept") || "").includes("text/html");
  event.respondWith(wantsPage ? networkFirst(request) : cacheFirst(request));
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    return (await cache.match(request, { ignoreSearch: true })) ||
      (await cache.match(OFFLINE_PAGE)) ||
      Response.error();
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") await cache.put(request, response.clone());
  return response;
}
